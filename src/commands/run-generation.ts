import { loadConfig, resolveSettings } from '../settings/config.js';
import { UsageError } from '../errors.js';
import { encodePng } from '../image/encode-png.js';
import { formatInfotext, type GenerationParameters } from '../image/infotext.js';
import { planOutputs, resolveOutputTarget, type OutputNameVars, type OutputTarget } from '../image/output-path.js';
import type { Raster } from '../image/raster.js';
import { writeFileAtomic } from '../image/write.js';
import { cacheRoot, type Task } from '../models/index.js';
import { join } from 'node:path';
import { generate } from '../pipeline/generate.js';
import { loadModel } from '../pipeline/load.js';
import type { ModelBundle } from '../pipeline/bundle.js';
import { readModelFiles, type ModelFiles } from '../pipeline/model-files.js';
import type { GeneratedImage, GenerationRequest, GenerationResult, ImageMetadata } from '../pipeline/types.js';
import { randomSeed } from '../rng/index.js';
import { resolveSampler, UnknownSamplerError } from '../schedulers/index.js';
import { VERSION } from '../version.js';
import type { ImageJob } from './image-job.js';
import { chooseModel, folderRecommendation, withRecommended } from './model-choice.js';
import { progressView, type ProgressView } from './progress.js';
import type { Settings } from '../settings/options.js';

/** Raw commander values: strings as typed, parsed by the options table. */
export type GenerationFlags = Record<string, unknown> & { json?: boolean; quiet?: boolean; config?: string };

export interface GenerationInput {
  /** One prompt, or several (txt2img --prompts-file) run one after another on the loaded model. */
  prompts: readonly string[];
  flags: GenerationFlags;
  task: Task;
  /** img2img, inpaint, outpaint: reads and checks the input pictures; gets the model's files (not yet loaded). */
  job?: (files: ModelFiles) => Promise<ImageJob>;
}

/**
 * Shared by every generating subcommand: settings → validated request → one pipeline →
 * PNGs with their parameters. Everything a user can get wrong is checked before the model
 * loads, and no file is written until its image exists.
 */
export async function runGeneration(input: GenerationInput): Promise<void> {
  const { flags } = input;
  const config = await loadConfig(process.cwd(), flags.config);
  const resolved = resolveSettings(config, flags);
  resolveSampling(resolved.settings);
  const target = await resolveOutputTarget(resolved.settings.output);
  const model = await chooseModel(resolved.settings, input.task, Boolean(flags.quiet));
  const files = readModelFiles(model.dir);
  const settings = withRecommended(resolved.settings, resolved.sources, model.entry?.recommended ?? folderRecommendation(files));
  const sampling = resolveSampling(settings);
  const job = input.job ? await input.job(files) : undefined;

  const bundle = await loadModel(model.dir, {
    device: settings.device,
    withEncoder: Boolean(job),
    withDepthEstimator: Boolean(job?.depthEstimator),
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
    const native = bundle.files.sampleSize * bundle.files.vaeScaleFactor;
    const width = job?.width ?? settings.width ?? native;
    const height = job?.height ?? settings.height ?? native;
    const ratio = bundle.files.vaeScaleFactor;
    if (width % ratio !== 0 || height % ratio !== 0) {
      throw new UsageError(`--width and --height must be multiples of ${ratio} for this model (got ${width}x${height})`);
    }
    for (const prompt of input.prompts) {
      // A given --seed holds for every prompt (their images compare); otherwise each draws its own.
      const seed = settings.seed ?? randomSeed();
      const base: GenerationRequest = {
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
        ...sampling,
        ...(settings.eta !== undefined ? { eta: settings.eta } : {}),
        ...(settings.ensd > 0 ? { ensd: settings.ensd } : {}),
        ...(settings.variationStrength > 0 ? { variation: { seed: settings.variationSeed ?? randomSeed(), strength: settings.variationStrength } } : {}),
        width,
        height,
        batchSize: settings.batchSize,
        vaeTiling: settings.vaeTiling,
      };
      const progress = progressView({ quiet: Boolean(flags.quiet) });
      warnMissingEmbeddings(bundle, [prompt, settings.negativePrompt], settings.embeddingsDir);
      const writer = imageWriter(target, settings, Boolean(flags.json), { ...promptFields(bundle, settings, [prompt, settings.negativePrompt]), ...job?.infotext }, job?.finish);
      if (job && job.passCount > 1) await runPasses(bundle, base, job, settings, progress, writer);
      else await runBatches(bundle, base, job, settings, progress, writer);
    }
  } finally {
    await bundle.release();
  }
}

type Writer = (images: GeneratedImage[], timings: GenerationResult['timings'], firstIndex: number, batch: number) => Promise<void>;

async function runBatches(bundle: ModelBundle, base: GenerationRequest, job: ImageJob | undefined, settings: Settings, progress: ProgressView, write: Writer): Promise<void> {
  for (let batch = 0; batch < settings.batchCount; batch++) {
    const seed = nextSeed(base.seed, batch, settings);
    const variation = base.variation ? { variation: { ...base.variation, seed: base.variation.seed + batch * settings.batchSize } } : {};
    const request = { ...base, seed, ...variation, ...(job ? await job.pass(0, undefined, seed) : {}) };
    const label = settings.batchCount > 1 ? `batch ${batch + 1}/${settings.batchCount}` : 'sampling';
    const result = await generate(bundle, request, progress.listener(label));
    progress.stop();
    await write(result.images, result.timings, batch * settings.batchSize, batch);
  }
}

/** The first seed of batch number `batch`: seeds count on across batches (A1111), except with a variation strength. */
function nextSeed(seed: number, batch: number, settings: Settings): number {
  if (settings.variationStrength > 0) return seed;
  return settings.seedMode === 'diffusers' ? seed + batch : seed + batch * settings.batchSize;
}

/** Outpainting in several passes: each image goes through them alone, each pass starting from the last. */
async function runPasses(bundle: ModelBundle, base: GenerationRequest, job: ImageJob, settings: Settings, progress: ProgressView, write: Writer): Promise<void> {
  const count = settings.batchSize * settings.batchCount;
  for (let i = 0; i < count; i++) {
    const seed = settings.variationStrength > 0 ? base.seed : base.seed + i;
    const variation = base.variation ? { variation: { ...base.variation, seed: base.variation.seed + i } } : {};
    let previous: Raster | undefined;
    let result: GenerationResult | undefined;
    for (let p = 0; p < job.passCount; p++) {
      const request = { ...base, seed, ...variation, batchSize: 1, ...(await job.pass(p, previous, seed)) };
      result = await generate(bundle, request, progress.listener(`image ${i + 1}/${count}, pass ${p + 1}/${job.passCount}`));
      progress.stop();
      previous = result.images[0]!.image;
    }
    await write(result!.images, result!.timings, i, Math.floor(i / settings.batchSize));
  }
}

function imageWriter(target: OutputTarget, settings: Settings, json: boolean, extra: Record<string, string>, finish?: (image: Raster) => Raster): Writer {
  return async (images, timings, firstIndex, batch) => {
    const outputs = planOutputs(target, images.map((img, i) => nameVars(img, firstIndex + i, batch)), { overwrite: settings.overwrite });
    for (const [i, image] of images.entries()) {
      const png = await encodePng(finish ? finish(image.image) : image.image, [{ keyword: 'parameters', text: formatInfotext(toInfotext(image.metadata, extra)) }]);
      const planned = outputs[i]!;
      const path = await writeFileAtomic(planned.path, png, { ifExists: planned.ifExists });
      process.stdout.write(json ? `${JSON.stringify({ path, seed: image.seed, parameters: { ...image.metadata, ...extra }, timings })}\n` : `${path}\n`);
    }
  };
}

/** A1111's "Clip skip" and "TI hashes" (embeddings the prompts use), and our weighting and quantization when not the defaults. */
function promptFields(bundle: ModelBundle, settings: Settings, prompts: string[]): Record<string, string> {
  const used = Object.entries(bundle.embeddingHashes).filter(([name]) => prompts.some((p) => p.includes(name)));
  return {
    ...(settings.clipSkip > 1 ? { 'Clip skip': String(settings.clipSkip) } : {}),
    ...(used.length ? { 'TI hashes': used.map(([name, hash]) => `${name}: ${hash}`).join(', ') } : {}),
    ...(settings.promptWeighting !== 'a1111' ? { 'Prompt weighting': settings.promptWeighting } : {}),
    ...(bundle.quantization ? { Quantization: `${bundle.quantization.mode} (${bundle.quantization.format})` } : {}),
    ...(settings.sdeNoise !== 'brownian' ? { 'SDE noise': settings.sdeNoise } : {}),
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

function resolveSampling(settings: Settings): Pick<GenerationRequest, 'sampler' | 'schedule' | 'discardPenultimateSigma'> {
  try {
    const r = resolveSampler(settings.sampler, settings.schedule);
    return { sampler: r.sampler, schedule: r.schedule, discardPenultimateSigma: r.discardPenultimateSigma };
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

/** Our metadata in A1111's infotext vocabulary ("RNG: CPU" / "NV" as A1111 writes them). */
export function toInfotext(m: ImageMetadata, jobFields: Record<string, string> = {}): GenerationParameters {
  const extra: Record<string, string> = { ...jobFields };
  if (m.eta !== undefined) extra.Eta = String(m.eta);
  if (m.cfgRescale > 0) extra['CFG Rescale'] = String(m.cfgRescale);
  if (m.seedMode === 'diffusers' && m.batchSize > 1) extra['Seed mode'] = 'diffusers';
  return {
    prompt: m.prompt,
    negativePrompt: m.negativePrompt,
    steps: m.steps,
    sampler: m.sampler,
    scheduleType: m.scheduleType,
    cfgScale: m.cfgScale,
    seed: m.seed,
    width: m.width,
    height: m.height,
    modelHash: m.modelHash,
    model: m.model,
    ...(m.vae !== undefined ? { vae: m.vae, vaeHash: m.vaeHash! } : {}),
    ...(m.denoisingStrength !== undefined ? { denoisingStrength: m.denoisingStrength } : {}),
    ...(m.variationSeed !== undefined ? { variationSeed: m.variationSeed, variationSeedStrength: m.variationStrength! } : {}),
    ...(m.ensd !== undefined ? { ensd: m.ensd } : {}),
    rng: m.rng === 'philox' ? 'NV' : 'CPU',
    version: `diffuse ${VERSION}`,
    extra,
  };
}
