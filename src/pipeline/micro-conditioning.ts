import { ModelLoadError } from '../errors.js';
import type { MicroConditioning, PassRequest } from './types.js';

/** diffusers' StableDiffusionXLImg2ImgPipeline defaults, which A1111's refiner settings share. */
export const DEFAULT_AESTHETIC_SCORE = 6;
export const DEFAULT_NEGATIVE_AESTHETIC_SCORE = 2.5;

/**
 * SDXL's micro-conditioning as the UNet's `time_ids`, as diffusers' _get_add_time_ids and A1111's
 * sdxl conditioner lay them out: [original height, width, crop top, left, target height, width]
 * for a base UNet (6 values), [original height, width, crop top, left, aesthetic score] for a
 * refiner (5). Original and target size default to the size painted, the crop to 0, 0; the
 * negative side takes its own values where given, else the positive ones (its own aesthetic score).
 */
export function timeIds(count: number, request: Pick<PassRequest, 'width' | 'height' | 'microConditioning'>, negative: boolean): Float32Array {
  const m: MicroConditioning = request.microConditioning ?? {};
  const size: [number, number] = [request.height, request.width];
  const original = (negative ? m.negativeOriginalSize : undefined) ?? m.originalSize ?? size;
  const crop = (negative ? m.negativeCropTopLeft : undefined) ?? m.cropTopLeft ?? [0, 0];
  if (count === 5) {
    const score = negative ? (m.negativeAestheticScore ?? DEFAULT_NEGATIVE_AESTHETIC_SCORE) : (m.aestheticScore ?? DEFAULT_AESTHETIC_SCORE);
    return Float32Array.from([...original, ...crop, score]);
  }
  if (count === 6) {
    const target = (negative ? m.negativeTargetSize : undefined) ?? m.targetSize ?? size;
    return Float32Array.from([...original, ...crop, ...target]);
  }
  throw new ModelLoadError(`unet input time_ids takes ${count} values; SDXL UNets take 6 (base) or 5 (refiner)`);
}
