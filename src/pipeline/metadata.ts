import type { ImageMetadata } from '../image/image-metadata.js';
import { a1111Name, resolveSampler } from '../schedulers/index.js';
import type { ModelBundle } from './bundle.js';
import { modelHash, sha256File, weightsHash } from './model-hash.js';
import { controlNetFor } from './control.js';
import type { ControlRecord, HiresRecord } from '../image/image-metadata.js';
import { DEFAULT_MASKED_PADDING } from './tasks/inpaint.js';
import { DEFAULT_OVERLAP, DEFAULT_SEAM_BLUR } from './tasks/outpaint.js';
import { sdUpscalerName } from './tasks/sd-upscale.js';
import type { GenerationRequest, HiresFix, HiresUpscaler } from './types.js';

/** What differs between the images of one request. */
export interface ImageFacts {
  seed: number;
  batchPos: number;
}

/** Per request: what every image of it records (the model's hashes are read once and remembered). */
export async function metadataFor(bundle: ModelBundle, request: GenerationRequest): Promise<(facts: ImageFacts) => ImageMetadata> {
  const hash = await modelHash(bundle.files.dir);
  const vae = bundle.vae && !bundle.vae.tiny ? { name: bundle.vae.name, hash: bundle.vae.hash ?? (await sha256File(bundle.vae.decoderPath)).slice(0, 10) } : undefined;
  const tinyVae = bundle.vae?.tiny ? { decode: true, encode: Boolean(request.init) } : undefined;
  const refiner = bundle.refiner && request.refinerSwitch !== undefined ? { name: bundle.refiner.name, hash: await modelHash(bundle.refiner.files.dir), switchAt: request.refinerSwitch } : undefined;
  const names = a1111Name(request.sampler, request.schedule);
  // Recorded only where reading the names back would pick another table (--from restores it).
  const table = request.noiseTable ?? 'diffusers';
  const sigmaTable = resolveSampler(names.sampler, names.scheduleType).noiseTable === table ? {} : { sigmaTable: table };
  const prompts = [request.prompt, request.negativePrompt];
  const embeddings = Object.fromEntries(Object.entries(bundle.embeddingHashes).filter(([name]) => prompts.some((p) => p.includes(name))));
  const { init, mask, outpaint } = request;
  const control = await controlRecords(bundle, request);
  return ({ seed, batchPos }) => ({
    prompt: request.prompt,
    negativePrompt: request.negativePrompt,
    steps: request.steps,
    sampler: names.sampler,
    scheduleType: names.scheduleType,
    cfgScale: request.cfgScale,
    cfgRescale: request.cfgRescale,
    seed,
    width: request.width,
    height: request.height,
    model: bundle.name,
    modelHash: hash,
    ...(vae ? { vae } : {}),
    ...(tinyVae ? { tinyVae } : {}),
    rng: request.rng,
    seedMode: request.seedMode,
    ...(request.eta !== undefined ? { eta: request.eta } : {}),
    batchSize: request.batchSize,
    batchPos,
    ...(request.variation ? { variationSeed: request.variation.seed + batchPos, variationStrength: request.variation.strength } : {}),
    ...(request.ensd ? { ensd: request.ensd } : {}),
    ...((request.deepCache ?? 1) > 1 ? { deepCache: request.deepCache } : {}),
    clipSkip: bundle.clipSkip,
    embeddings,
    ...(bundle.loras.length ? { loras: Object.fromEntries(bundle.loras.map((l) => [l.name, l.hash])) } : {}),
    promptWeighting: request.promptWeighting ?? 'a1111',
    ...(bundle.quantization ? { quantization: bundle.quantization } : {}),
    ...(bundle.tokenMerging ? { tokenMerging: bundle.tokenMerging } : {}),
    ...(bundle.provider !== 'cpu' ? { provider: bundle.provider } : {}),
    sdeNoise: request.sdeNoise ?? 'brownian',
    ...sigmaTable,
    ...(init
      ? {
          init: {
            strength: init.strength,
            strengthMode: init.strengthMode ?? 'diffusers',
            ...(init.source ? { hash: init.source.hash, ...(init.source.resizeMode ? { resizeMode: init.source.resizeMode } : {}) } : {}),
          },
        }
      : {}),
    ...(mask
      ? {
          mask: {
            ...(mask.source && mask.source !== 'alpha' ? { hash: mask.source.hash } : {}),
            fromAlpha: mask.source === 'alpha',
            blur: mask.blur ?? 0,
            invert: mask.invert ?? false,
            content: mask.content ?? 'original',
            area: mask.area ?? 'whole',
            ...(mask.area === 'masked' ? { padding: mask.padding ?? DEFAULT_MASKED_PADDING } : {}),
          },
        }
      : {}),
    ...(outpaint
      ? { outpaint: { extend: outpaint.extend, fill: outpaint.fill ?? 'stretch', overlap: outpaint.overlap ?? DEFAULT_OVERLAP, blur: outpaint.blur ?? DEFAULT_SEAM_BLUR } }
      : {}),
    ...(refiner ? { refiner } : {}),
    ...(request.sdUpscale ? { sdUpscale: { overlap: request.sdUpscale.overlap, upscaler: sdUpscalerName(request.sdUpscale.upscaler) } } : {}),
    ...depthRecord(bundle, request),
    ...(control.length ? { control } : {}),
    ...(request.initialLatents?.hash ? { initialLatents: { hash: request.initialLatents.hash } } : {}),
    ...(request.hires ? { hires: hiresRecord(request, request.hires) } : {}),
    ...(request.watermark ? { watermark: request.watermark.label } : {}),
  });
}

/** A1111's labels for the hires upscalers (shared.latent_upscale_modes' keys and the built-in upscalers' names). */
export const HIRES_UPSCALER_LABELS: Record<HiresUpscaler, string> = {
  latent: 'Latent',
  'latent-antialiased': 'Latent (antialiased)',
  'latent-bicubic': 'Latent (bicubic)',
  'latent-bicubic-antialiased': 'Latent (bicubic antialiased)',
  'latent-nearest': 'Latent (nearest)',
  'latent-nearest-exact': 'Latent (nearest-exact)',
  lanczos: 'Lanczos',
  nearest: 'Nearest',
  none: 'None',
};

/** The hires fix as A1111 records it: the second pass's prompts, sampler, schedule and CFG only where they differ from the first's. */
function hiresRecord(request: GenerationRequest, hires: HiresFix): HiresRecord {
  const first = a1111Name(request.sampler, request.schedule);
  const second = hires.sampling ? a1111Name(hires.sampling.sampler, hires.sampling.schedule) : first;
  return {
    ...('scale' in hires.target ? { scale: hires.target.scale } : { resize: hires.target }),
    upscaler: typeof hires.upscaler === 'string' ? HIRES_UPSCALER_LABELS[hires.upscaler] : hires.upscaler.name,
    ...(hires.steps !== undefined ? { steps: hires.steps } : {}),
    strength: hires.strength,
    ...(hires.prompt !== undefined && hires.prompt !== request.prompt ? { prompt: hires.prompt } : {}),
    ...(hires.negativePrompt !== undefined && hires.negativePrompt !== request.negativePrompt ? { negativePrompt: hires.negativePrompt } : {}),
    ...(second.sampler !== first.sampler ? { sampler: second.sampler } : {}),
    ...(second.scheduleType !== first.scheduleType ? { scheduleType: second.scheduleType } : {}),
    ...(hires.cfgScale !== undefined && hires.cfgScale !== request.cfgScale ? { cfgScale: hires.cfgScale } : {}),
  };
}

/** depth2img: the map given (by its file's hash), or the model's estimate. */
function depthRecord(bundle: ModelBundle, { init, depth }: GenerationRequest): Pick<ImageMetadata, 'depthMap'> {
  if (!init || bundle.unet.inChannels !== bundle.files.latentChannels + 1) return {};
  if (!depth) return { depthMap: 'estimated' };
  return depth.hash ? { depthMap: { hash: depth.hash } } : {};
}

/** Each ControlNet unit as A1111's ControlNet extension records it. */
async function controlRecords(bundle: ModelBundle, request: GenerationRequest): Promise<ControlRecord[]> {
  return Promise.all(
    (request.control ?? []).map(async (unit): Promise<ControlRecord> => {
      const loaded = controlNetFor(bundle, unit.model);
      const p = unit.preprocessor ?? { module: 'none' };
      return {
        module: p.module,
        ...(p.processorRes !== undefined ? { processorRes: p.processorRes } : {}),
        ...(p.pixelPerfect ? { pixelPerfect: true } : {}),
        ...(p.thresholdA !== undefined ? { thresholdA: p.thresholdA } : {}),
        ...(p.thresholdB !== undefined ? { thresholdB: p.thresholdB } : {}),
        model: loaded.name,
        hash: loaded.hash ?? (await weightsHash(loaded.net.path)).slice(0, 8),
        weight: unit.weight,
        resizeMode: unit.resizeMode ?? 'just-resize',
        start: unit.start,
        end: unit.end,
        guess: unit.guess ?? false,
      };
    }),
  );
}
