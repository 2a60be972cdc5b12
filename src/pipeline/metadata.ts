import type { ImageMetadata } from '../image/image-metadata.js';
import { a1111Name, resolveSampler } from '../schedulers/index.js';
import type { ModelBundle } from './bundle.js';
import { modelHash, sha256File, weightsHash } from './model-hash.js';
import { controlNetFor } from './control.js';
import type { ControlRecord } from '../image/image-metadata.js';
import { DEFAULT_MASKED_PADDING } from './tasks/inpaint.js';
import { DEFAULT_OVERLAP, DEFAULT_SEAM_BLUR } from './tasks/outpaint.js';
import type { GenerationRequest } from './types.js';

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
    clipSkip: bundle.clipSkip,
    embeddings,
    ...(bundle.loras.length ? { loras: Object.fromEntries(bundle.loras.map((l) => [l.name, l.hash])) } : {}),
    promptWeighting: request.promptWeighting ?? 'a1111',
    ...(bundle.quantization ? { quantization: bundle.quantization } : {}),
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
    ...depthRecord(bundle, request),
    ...(control.length ? { control } : {}),
    ...(request.initialLatents?.hash ? { initialLatents: { hash: request.initialLatents.hash } } : {}),
    ...(request.watermark ? { watermark: request.watermark.label } : {}),
  });
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
        ...(p.thresholdA !== undefined ? { thresholdA: p.thresholdA } : {}),
        ...(p.thresholdB !== undefined ? { thresholdB: p.thresholdB } : {}),
        model: loaded.name,
        hash: (await weightsHash(loaded.net.path)).slice(0, 8),
        weight: unit.weight,
        resizeMode: unit.resizeMode ?? 'just-resize',
        start: unit.start,
        end: unit.end,
        guess: unit.guess ?? false,
      };
    }),
  );
}
