import { join } from 'node:path';
import { loadConfig, resolveSettings } from '../settings/config.js';
import { UsageError } from '../errors.js';
import { encodePng } from '../image/encode-png.js';
import { metadataInfotext } from '../image/infotext.js';
import { planOutputs, resolveOutputTarget, type OutputNameVars, type OutputTarget } from '../image/output-path.js';
import { writeFileAtomic } from '../image/write.js';
import { SDXL_WATERMARK_BITS, bitsFromText } from '../image/watermark/payload.js';
import { cacheRoot, type Task } from '../models/index.js';
import type { ModelBundle } from '../pipeline/bundle.js';
import { checkRequest } from '../pipeline/check-request.js';
import { generate } from '../pipeline/generate.js';
import { loadModel } from '../pipeline/load.js';
import { readModelFiles } from '../pipeline/model-files.js';
import { nthBatch } from '../pipeline/seeds.js';
import type { GeneratedImage, GenerationRequest, GenerationResult } from '../pipeline/types.js';
import { randomSeed } from '../rng/index.js';
import { resolveSampler, UnknownSamplerError } from '../schedulers/index.js';
import type { GeneratingCommand, Settings } from '../settings/options.js';
import { readImageTask, type ImageTask } from '../settings/request.js';
import { chooseModel, folderRecommendation, withRecommended } from './model-choice.js';
import { progressView } from './progress.js';

/** Raw commander values: strings as typed, parsed by the options table. */
export type GenerationFlags = Record<string, unknown> & { json?: boolean; quiet?: boolean; config?: string };

export interface GenerationInput {
  /** One prompt, or several (txt2img --prompts-file) run one after another on the loaded model. */
  prompts: readonly string[];
  flags: GenerationFlags;
  command: GeneratingCommand;
}

/** The registry's task a subcommand needs a model for (outpainting is inpainting). */
const TASK: Record<GeneratingCommand, Task> = { txt2img: 'txt2img', img2img: 'img2img', inpaint: 'inpaint', outpaint: 'inpaint', depth2img: 'depth2img' };

/**
 * Shared by every generating subcommand: flags and config → settings → requests → the one
 * pipeline → PNGs with their parameters. Everything a user can get wrong is checked before the
 * model loads, and no file is written until its image exists.
 */
export async function runGeneration(input: GenerationInput): Promise<void> {
  const { flags, command } = input;
  const config = await loadConfig(process.cwd(), flags.config);
  const resolved = resolveSettings(config, flags, command);
  resolveSampling(resolved.settings);
  const target = await resolveOutputTarget(resolved.settings.output);
  const model = await chooseModel(resolved.settings, TASK[command], Boolean(flags.quiet));
  const files = readModelFiles(model.dir);
  const settings = withRecommended(resolved.settings, resolved.sources, model.entry?.recommended ?? folderRecommendation(files));
  const sampling = resolveSampling(settings);
  const task = await readImageTask(command, settings, files);
  if (!flags.quiet) for (const note of task?.notes ?? []) process.stderr.write(`note: ${note}\n`);
  const native = files.sampleSize * files.vaeScaleFactor;
  const size = { width: task?.width ?? settings.width ?? native, height: task?.height ?? settings.height ?? native };
  const requestFor = (prompt: string, seed: number): GenerationRequest => ({ ...baseRequest(settings, prompt, seed), ...sampling, ...size, ...task?.fields });
  checkRequest(files, requestFor(input.prompts[0]!, 0));

  const bundle = await loadModel(model.dir, {
    device: settings.device,
    withEncoder: Boolean(task),
    withDepthEstimator: Boolean(task?.depthEstimator),
    clipSkip: settings.clipSkip,
    fuseAttention: settings.attention === 'fused',
    quantize: settings.quantize,
    ...(settings.int8Format !== 'auto' ? { int8Format: settings.int8Format } : {}),
    // Between prompts of a --prompts-file the text encoder is needed again: keep it open there.
    parkTextEncoder: input.prompts.length === 1,
    ...(flags.quiet ? {} : { onNote: (message: string) => process.stderr.write(`${message}\n`) }),
    ...(settings.optimizedCache !== 'off' ? { optimizedCache: settings.optimizedCache || join(cacheRoot(), 'optimized') } : {}),
    ...(settings.embeddingsDir ? { embeddingsDir: settings.embeddingsDir } : {}),
    ...(settings.vae ? { vae: settings.vae } : {}),
    ...(settings.threads ? { threads: settings.threads } : {}),
  });
  try {
    for (const prompt of input.prompts) {
      // A given --seed holds for every prompt (their images compare); otherwise each draws its own.
      const request = requestFor(prompt, settings.seed ?? randomSeed());
      warnMissingEmbeddings(bundle, [prompt, settings.negativePrompt], settings.embeddingsDir);
      await runBatches(bundle, request, task, settings, Boolean(flags.quiet), writer(target, settings, Boolean(flags.json)));
    }
  } finally {
    await bundle.release();
  }
}

/** The settings every request of the run shares, before the sampler and the task's fields. */
function baseRequest(settings: Settings, prompt: string, seed: number): Omit<GenerationRequest, 'sampler' | 'schedule' | 'width' | 'height'> {
  return {
    prompt,
    negativePrompt: settings.negativePrompt,
    promptWeighting: settings.promptWeighting,
    condPadding: settings.padCond,
    steps: settings.steps,
    cfgScale: settings.cfgScale,
    cfgRescale: settings.cfgRescale,
    seed,
    rng: settings.rng,
    seedMode: settings.seedMode,
    sdeNoise: settings.sdeNoise,
    ...(settings.eta !== undefined ? { eta: settings.eta } : {}),
    ...(settings.ensd > 0 ? { ensd: settings.ensd } : {}),
    ...(settings.variationStrength > 0 ? { variation: { seed: settings.variationSeed ?? randomSeed(), strength: settings.variationStrength } } : {}),
    batchSize: settings.batchSize,
    vaeTiling: settings.vaeTiling,
    ...(settings.watermark === false ? {} : { watermark: watermarkOf(settings.watermark) }),
  };
}

function watermarkOf(setting: true | string): NonNullable<GenerationRequest['watermark']> {
  return setting === true ? { bits: SDXL_WATERMARK_BITS, label: 'sdxl' } : { bits: bitsFromText(setting), label: `text=${setting}` };
}

type Writer = (images: GeneratedImage[], timings: GenerationResult['timings'], firstIndex: number, batch: number) => Promise<void>;

async function runBatches(bundle: ModelBundle, base: GenerationRequest, task: ImageTask | undefined, settings: Settings, quiet: boolean, write: Writer): Promise<void> {
  const progress = progressView({ quiet });
  for (let batch = 0; batch < settings.batchCount; batch++) {
    const label = settings.batchCount > 1 ? `batch ${batch + 1}/${settings.batchCount}` : task && base.outpaint ? 'outpaint' : 'sampling';
    const result = await generate(bundle, nthBatch(base, batch), progress.listener(label));
    progress.stop();
    await write(result.images, result.timings, batch * settings.batchSize, batch);
  }
}

function writer(target: OutputTarget, settings: Settings, json: boolean): Writer {
  return async (images, timings, firstIndex, batch) => {
    const outputs = planOutputs(target, images.map((img, i) => nameVars(img, firstIndex + i, batch)), { overwrite: settings.overwrite });
    for (const [i, image] of images.entries()) {
      const png = await encodePng(image.image, [{ keyword: 'parameters', text: metadataInfotext(image.metadata) }]);
      const planned = outputs[i]!;
      const path = await writeFileAtomic(planned.path, png, { ifExists: planned.ifExists });
      process.stdout.write(json ? `${JSON.stringify({ path, seed: image.seed, parameters: image.metadata, timings })}\n` : `${path}\n`);
    }
  };
}

/** A word that looks like an embedding trigger (A1111 users write "embedding:name" or the bare name) but is not loaded. */
function warnMissingEmbeddings(bundle: ModelBundle, prompts: string[], dir: string | undefined): void {
  const loaded = new Set(Object.keys(bundle.embeddingHashes));
  for (const prompt of prompts) {
    for (const match of prompt.matchAll(/embedding:([\w.-]+)/g)) {
      if (!loaded.has(match[1]!)) process.stderr.write(`warning: embedding '${match[1]}' is not in ${dir ?? 'any --embeddings-dir'}; the prompt uses its name as plain text\n`);
    }
  }
}

function resolveSampling(settings: Settings): Pick<GenerationRequest, 'sampler' | 'schedule' | 'discardPenultimateSigma' | 'noiseTable'> {
  try {
    const r = resolveSampler(settings.sampler, settings.schedule);
    return { sampler: r.sampler, schedule: r.schedule, discardPenultimateSigma: r.discardPenultimateSigma, noiseTable: settings.sigmaTable === 'auto' ? r.noiseTable : settings.sigmaTable };
  } catch (err) {
    if (err instanceof UnknownSamplerError) {
      const flag = err.kind === 'sampler' ? '--sampler' : '--schedule';
      throw new UsageError(`${flag}: unknown ${err.kind} '${err.input}' (try: ${err.valid.slice(0, 20).join(', ')}${err.valid.length > 20 ? ', ...' : ''})`, { cause: err });
    }
    throw err;
  }
}

function nameVars(image: GeneratedImage, index: number, batch: number): OutputNameVars {
  const m = image.metadata;
  return { seed: image.seed, index, batch, prompt: m.prompt, model: m.model, sampler: m.sampler, steps: m.steps, cfg: m.cfgScale, width: m.width, height: m.height, date: new Date() };
}
