import { loadConfig, resolveSettings } from '../config.js';
import { UsageError } from '../errors.js';
import { encodePng } from '../image/encode-png.js';
import { formatInfotext, type GenerationParameters } from '../image/infotext.js';
import { planOutputs, resolveOutputTarget, type OutputNameVars } from '../image/output-path.js';
import { writeFileAtomic } from '../image/write.js';
import { generate } from '../pipeline/generate.js';
import { loadModel } from '../pipeline/load.js';
import type { GeneratedImage, GenerationRequest, ImageMetadata } from '../pipeline/types.js';
import { randomSeed } from '../rng/index.js';
import { resolveSampler, UnknownSamplerError } from '../schedulers/index.js';
import { VERSION } from '../version.js';
import { chooseModel, withRecommended } from './model-choice.js';
import { progressView } from './progress.js';
import type { Settings } from './options.js';

/** Raw commander values: strings as typed, parsed by the options table. */
export type GenerationFlags = Record<string, unknown> & { json?: boolean; quiet?: boolean; config?: string };

export interface GenerationInput {
  prompt: string;
  flags: GenerationFlags;
}

/**
 * Shared by every generating subcommand: settings → validated request → one pipeline →
 * PNGs with their parameters. Everything a user can get wrong is checked before the model loads,
 * and no file is written until its image exists.
 */
export async function runGeneration(input: GenerationInput): Promise<void> {
  const { flags } = input;
  const config = await loadConfig(process.cwd(), flags.config);
  const resolved = resolveSettings(config, flags);
  // Everything the user typed is checked before a model is looked up or downloaded.
  resolveSampling(resolved.settings);
  const target = await resolveOutputTarget(resolved.settings.output);
  const model = await chooseModel(resolved.settings, 'txt2img', Boolean(flags.quiet));
  const settings = withRecommended(resolved.settings, resolved.sources, model.entry);
  const sampling = resolveSampling(settings);
  const seed = settings.seed ?? randomSeed();

  const bundle = await loadModel(model.dir, { device: settings.device, ...(settings.threads ? { threads: settings.threads } : {}) });
  try {
    const native = bundle.files.sampleSize * bundle.files.vaeScaleFactor;
    const width = settings.width ?? native;
    const height = settings.height ?? native;
    const ratio = bundle.files.vaeScaleFactor;
    if (width % ratio !== 0 || height % ratio !== 0) {
      throw new UsageError(`--width and --height must be multiples of ${ratio} for this model (got ${width}x${height})`);
    }
    const progress = progressView({ quiet: Boolean(flags.quiet) });
    for (let batch = 0; batch < settings.batchCount; batch++) {
      const request: GenerationRequest = {
        prompt: input.prompt,
        negativePrompt: settings.negativePrompt,
        steps: settings.steps,
        cfgScale: settings.cfgScale,
        cfgRescale: settings.cfgRescale,
        seed: settings.seedMode === 'diffusers' ? seed + batch : seed + batch * settings.batchSize,
        rng: settings.rng,
        seedMode: settings.seedMode,
        ...sampling,
        ...(settings.eta !== undefined ? { eta: settings.eta } : {}),
        width,
        height,
        batchSize: settings.batchSize,
      };
      const label = settings.batchCount > 1 ? `batch ${batch + 1}/${settings.batchCount}` : 'sampling';
      const result = await generate(bundle, request, progress.listener(label));
      progress.stop();
      const outputs = planOutputs(target, result.images.map((img, i) => nameVars(img, batch * settings.batchSize + i, batch)), {
        overwrite: settings.overwrite,
      });
      for (const [i, image] of result.images.entries()) {
        const parameters = toInfotext(image.metadata);
        const png = await encodePng(image.image, [{ keyword: 'parameters', text: formatInfotext(parameters) }]);
        const planned = outputs[i]!;
        const path = await writeFileAtomic(planned.path, png, { ifExists: planned.ifExists });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ path, seed: image.seed, parameters: image.metadata, timings: result.timings })}\n`);
        } else {
          process.stdout.write(`${path}\n`);
        }
      }
    }
  } finally {
    await bundle.release();
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
export function toInfotext(m: ImageMetadata): GenerationParameters {
  const extra: Record<string, string> = {};
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
    rng: m.rng === 'philox' ? 'NV' : 'CPU',
    version: `diffuse ${VERSION}`,
    extra: m.eta !== undefined ? { Eta: String(m.eta), ...extra } : extra,
  };
}
