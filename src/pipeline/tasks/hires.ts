import { resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { interpolate, type InterpolateMode } from '../../image/interpolate.js';
import { rasterToTensor, tensorToRasters } from '../../image/tensor-image.js';
import { pilResize } from '../../image/pil-resample.js';
import type { Raster } from '../../image/raster.js';
import { upscalerResize, type BuiltinUpscaler } from '../../image/upscaler-resize.js';
import { a1111UpscaleTarget, upscaleRaster } from '../upscale/index.js';
import { modelCalls } from '../../schedulers/index.js';
import type { ModelBundle } from '../bundle.js';
import { encodeImage } from '../image-latents.js';
import { tiledDecode } from '../vae-tiling.js';
import type { GenerationRequest, HiresFix, HiresUpscaler, PassRequest } from '../types.js';

/** A1111's default denoising strength for the second pass. */
export const DEFAULT_HIRES_STRENGTH = 0.7;

/** The largest side a hires fix paints: the CLI's limit for --width and --height. */
export const MAX_HIRES_SIDE = 8192;

/** What a hires fix cannot take, each refused in one line before any model runs. */
export function checkHires(request: GenerationRequest, factor: number): void {
  const hires = request.hires;
  if (!hires) return;
  if (request.init || request.mask || request.outpaint || request.depth) {
    throw new UsageError('the hires fix runs on txt2img only: img2img, inpaint, outpaint and depth2img paint at their picture\'s size (upscale the picture first, then paint it)');
  }
  if (request.refinerSwitch !== undefined) throw new UsageError('the hires fix with a refiner is not supported: leave out --refiner or the --hires-* options');
  if (request.control?.length) throw new UsageError('the hires fix with ControlNet is not supported yet: leave out --control or the --hires-* options');
  if (!(hires.strength > 0 && hires.strength <= 1)) throw new UsageError(`the hires strength (denoising strength) must be above 0 and at most 1 (got ${hires.strength})`);
  if (hires.steps !== undefined && !(Number.isInteger(hires.steps) && hires.steps >= 1)) throw new UsageError(`the hires steps must be a whole number of at least 1 (got ${hires.steps})`);
  if (hires.cfgScale !== undefined && !(Number.isFinite(hires.cfgScale) && hires.cfgScale >= 0)) throw new UsageError(`the hires CFG scale must be a number of at least 0 (got ${hires.cfgScale})`);
  const t = hires.target;
  if ('scale' in t) {
    if (!(Number.isFinite(t.scale) && t.scale > 1)) throw new UsageError(`the hires scale must be a number above 1 (got ${t.scale}); for the first pass's size leave the hires fix out`);
  } else if (![t.width, t.height].every((v) => Number.isInteger(v) && v >= 8 && v % 8 === 0 && v <= MAX_HIRES_SIDE)) {
    throw new UsageError(`the hires size must be WxH in multiples of 8 up to ${MAX_HIRES_SIDE} (got ${t.width}x${t.height})`);
  }
  const target = hiresTarget(request.width, request.height, t, factor);
  if (Math.max(target.upscaleWidth, target.upscaleHeight) > MAX_HIRES_SIDE) {
    throw new UsageError(`the hires fix would paint ${target.upscaleWidth}x${target.upscaleHeight}, above the ${MAX_HIRES_SIDE}-pixel limit: choose a smaller --hires-scale or --hires-size`);
  }
  if (target.width < factor || target.height < factor) throw new UsageError(`the hires size ${target.width}x${target.height} is empty: choose a larger --hires-scale or --hires-size`);
}

/** shared.latent_upscale_modes: F.interpolate's mode and antialias per latent upscaler. */
const LATENT_MODES: Partial<Record<HiresUpscaler, [InterpolateMode, boolean]>> = {
  latent: ['bilinear', false],
  'latent-antialiased': ['bilinear', true],
  'latent-bicubic': ['bicubic', false],
  'latent-bicubic-antialiased': ['bicubic', true],
  'latent-nearest': ['nearest', false],
  'latent-nearest-exact': ['nearest-exact', false],
};

/** Where the second pass paints: the size upscaled to, and the latent rows and columns cropped off it. */
export interface HiresTarget {
  upscaleWidth: number;
  upscaleHeight: number;
  /** Latent columns and rows cropped (half before, half after) to fill "Hires resize" exactly. */
  truncateX: number;
  truncateY: number;
  /** The second pass's size in pixels. */
  width: number;
  height: number;
}

/**
 * calculate_target_resolution: int(size · scale), or for a resize target the first pass's aspect
 * kept, filling the target's larger side and cropping the excess from the latents. `factor` is
 * the VAE's (A1111's opt_f, 8 for every SD model).
 */
export function hiresTarget(width: number, height: number, target: HiresFix['target'], factor: number): HiresTarget {
  let up: [number, number];
  let truncate: [number, number] = [0, 0];
  if ('scale' in target) {
    up = [Math.trunc(width * target.scale), Math.trunc(height * target.scale)];
  } else {
    up = width / height < target.width / target.height ? [target.width, Math.floor((target.width * height) / width)] : [Math.floor((target.height * width) / height), target.height];
    truncate = [Math.floor((up[0] - target.width) / factor), Math.floor((up[1] - target.height) / factor)];
  }
  return {
    upscaleWidth: up[0],
    upscaleHeight: up[1],
    truncateX: truncate[0],
    truncateY: truncate[1],
    width: (Math.floor(up[0] / factor) - truncate[0]) * factor,
    height: (Math.floor(up[1] / factor) - truncate[1]) * factor,
  };
}

/**
 * A1111's hires fix (StableDiffusionProcessingTxt2Img.sample_hr_pass) around the one loop: the
 * first pass's latents are upscaled (F.interpolate in latent space, or decoded, resized by an image
 * upscaler and encoded again) and cropped to the target, and the second pass is an img2img request
 * from them: its own prompt, sampler, schedule, CFG scale and steps, A1111's fixed-steps cut for
 * the strength, noise from the same seeds at the new size, prompt editing counted on from the
 * first pass.
 */
export async function hiresPass(bundle: ModelBundle, first: PassRequest, hires: HiresFix, latents: Float32Array): Promise<PassRequest> {
  const factor = bundle.files.vaeScaleFactor;
  const target = hiresTarget(first.width, first.height, hires.target, factor);
  const c = bundle.files.latentChannels;
  const dims = [first.batchSize, c, first.height / factor, first.width / factor] as const;
  const mode = typeof hires.upscaler === 'string' ? LATENT_MODES[hires.upscaler] : undefined;
  const upH = Math.floor(target.upscaleHeight / factor);
  const upW = Math.floor(target.upscaleWidth / factor);
  const upscaled = mode ? interpolate(latents, dims, upH, upW, mode[0], mode[1]) : await imageUpscaled(bundle, first, latents, dims, target, imageUpscaler(bundle, hires.upscaler));
  const cropped = cropLatents(upscaled, [first.batchSize, c, upH, upW], target.truncateX, target.truncateY);
  const sampling = hires.sampling ?? { sampler: first.sampler, schedule: first.schedule, discardPenultimateSigma: first.discardPenultimateSigma ?? false, ...(first.noiseTable ? { noiseTable: first.noiseTable } : {}) };
  const { initialLatents: _latents, ...rest } = first;
  return {
    ...rest,
    ...sampling,
    prompt: hires.prompt ?? first.prompt,
    negativePrompt: hires.negativePrompt ?? first.negativePrompt,
    steps: hires.steps ?? first.steps,
    cfgScale: hires.cfgScale ?? first.cfgScale,
    width: target.width,
    height: target.height,
    latentInit: { latents: cropped, strength: hires.strength, firstPassSteps: modelCalls(first.sampler, first.steps) },
  };
}

/**
 * The image upscalers' path: each image decoded as A1111 decodes (clamp((x + 1) / 2), × 255,
 * truncated to 8 bits), resized by the upscaler to the upscaled size, and encoded again. A1111
 * samples the encoder's posterior with torch's global generator, which no seed reproduces; the
 * mean is taken here.
 */
async function imageUpscaled(
  bundle: ModelBundle,
  first: PassRequest,
  latents: Float32Array,
  [batch, c, h, w]: readonly [number, number, number, number],
  target: HiresTarget,
  upscaler: BuiltinUpscaler | ModelUpscale,
): Promise<Float32Array> {
  const factor = bundle.files.vaeScaleFactor;
  if (target.upscaleWidth % factor !== 0 || target.upscaleHeight % factor !== 0) {
    throw new UsageError(`the hires size ${target.upscaleWidth}x${target.upscaleHeight} is not a multiple of ${factor}, which an image upscaler needs (the VAE encodes it): choose a scale or size that gives one, or a latent upscaler`);
  }
  const perImage = c * h * w;
  const scale = Math.fround(bundle.vaeScale);
  const out: Float32Array[] = [];
  for (let b = 0; b < batch; b++) {
    const unscaled = latents.slice(b * perImage, (b + 1) * perImage).map((v) => v / scale);
    const decoded = first.vaeTiling
      ? await tiledDecode(bundle.vaeDecoder, unscaled, [c, h, w], { latent: bundle.files.vaeSampleSize / factor, sample: bundle.files.vaeSampleSize, overlap: 0.25 })
      : await bundle.vaeDecoder.decode(unscaled, [c, h, w]);
    const picture = tensorToRasters(decoded.data, [1, 3, decoded.height, decoded.width], 'a1111')[0]!;
    const resized = typeof upscaler === 'function' ? await upscaler(picture, target.upscaleWidth, target.upscaleHeight) : upscalerResize(picture, target.upscaleWidth, target.upscaleHeight, upscaler);
    out.push(await encodeImage(bundle, rasterToTensor(resized), resized.height, resized.width, 'mean', () => new Float32Array(0)));
  }
  const all = new Float32Array(out.reduce((n, l) => n + l.length, 0));
  out.forEach((l, i) => all.set(l, i * l.length));
  return all;
}

/** A built-in upscaler by name, or the loaded ESRGAN-family graph the request names, tiled as A1111 runs it. */
function imageUpscaler(bundle: ModelBundle, upscaler: HiresFix['upscaler']): BuiltinUpscaler | ModelUpscale {
  if (typeof upscaler === 'string') return upscaler as BuiltinUpscaler;
  const loaded = bundle.upscaler;
  if (!loaded || resolve(loaded.path) !== resolve(upscaler.model)) {
    throw new UsageError(`the hires upscaler ${upscaler.name} was not loaded with the model: load it with LoadOptions.upscaler (the CLI does for --hires-upscaler)`);
  }
  // images.resize_image with a model upscaler: Upscaler.upscale to int(side × scale // 8 × 8) (the model's passes, then Lanczos), then Lanczos to the size.
  return async (src, width, height) => {
    const scale = Math.max(width / src.width, height / src.height);
    const img = scale > 1 ? await upscaleRaster(loaded, src, a1111UpscaleTarget(src.width, src.height, scale)) : src;
    return img.width === width && img.height === height ? img : pilResize(img, width, height, 'lanczos');
  };
}

/** An ESRGAN-family upscaler as resize_image runs it: the picture to exactly width x height. */
type ModelUpscale = (src: Raster, width: number, height: number) => Promise<Raster>;

/** samples[:, :, ty // 2 : h - (ty + 1) // 2, tx // 2 : w - (tx + 1) // 2]. */
function cropLatents(x: Float32Array, [n, c, h, w]: readonly [number, number, number, number], tx: number, ty: number): Float32Array {
  if (tx === 0 && ty === 0) return x;
  const top = Math.floor(ty / 2);
  const left = Math.floor(tx / 2);
  const oh = h - ty;
  const ow = w - tx;
  const out = new Float32Array(n * c * oh * ow);
  for (let p = 0; p < n * c; p++) {
    for (let y = 0; y < oh; y++) out.set(x.subarray(p * h * w + (y + top) * w + left, p * h * w + (y + top) * w + left + ow), (p * oh + y) * ow);
  }
  return out;
}
