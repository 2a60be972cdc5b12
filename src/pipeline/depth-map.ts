import { UsageError } from '../errors.js';
import { interpolate } from '../image/interpolate.js';
import type { DepthMap } from './types.js';

/**
 * The depth channel of depth-conditioned UNets (stabilityai/stable-diffusion-2-depth), as
 * diffusers' StableDiffusionDepth2ImgPipeline makes it: the map resized to the latent size by
 * torch's bicubic interpolation, then stretched to [-1, 1] by its own minimum and maximum (so the
 * map's units do not matter: metric depth, inverse depth or 8-bit grey all work; larger = nearer
 * for the model, as DPT/MiDaS output).
 */

/** The UNet's depth channel [h, w] for a latent of h x w. */
export function depthChannel(depth: DepthMap, h: number, w: number): Float32Array {
  const resized = interpolate(depth.values, [1, 1, depth.height, depth.width], h, w, 'bicubic');
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of resized) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const f = Math.fround;
  // diffusers divides by zero here and feeds the UNet NaN.
  if (!(hi > lo)) throw new UsageError('the depth map is flat (one value everywhere): it has no depth for the model to follow');
  const range = f(hi - lo);
  return resized.map((v) => f(f(f(2 * f(v - lo)) / range) - 1));
}
