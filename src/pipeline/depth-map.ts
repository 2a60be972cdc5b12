import { UsageError } from '../errors.js';
import type { DepthMap } from './types.js';

/**
 * The depth channel of depth-conditioned UNets (stabilityai/stable-diffusion-2-depth), as
 * diffusers' StableDiffusionDepth2ImgPipeline makes it: the map resized to the latent size by
 * torch's bicubic interpolation, then stretched to [-1, 1] by its own minimum and maximum (so the
 * map's units do not matter: metric depth, inverse depth or 8-bit grey all work; larger = nearer
 * for the model, as DPT/MiDaS output).
 */

const A = -0.75;

/** torch's cubic convolution weights for a sample at fraction t between its 2nd and 3rd neighbour. */
function cubicWeights(t: number): [number, number, number, number] {
  const f = Math.fround;
  const near = (x: number) => f(f(f(f(f(A + 2) * x) - (A + 3)) * x) * x) + 1;
  const far = (x: number) => f(f(f(f(f(A * x) - 5 * A) * x) + 8 * A) * x) - 4 * A;
  const u = f(1 - t);
  return [f(far(f(t + 1))), f(near(t)), f(near(u)), f(far(f(u + 1)))];
}

/** Source position of output index i (align_corners=False, negative allowed for cubic), its floor and fraction. */
function sourceIndex(i: number, scale: number): { base: number; t: number } {
  const real = Math.fround(Math.fround(scale * (i + 0.5)) - 0.5);
  const base = Math.floor(real);
  return { base, t: Math.fround(real - base) };
}

/**
 * torch.nn.functional.interpolate(x, size=(outH, outW), mode='bicubic', align_corners=False) on
 * one [h, w] plane: separable cubic convolution (a = -0.75), edges clamped, no antialiasing.
 */
export function bicubicResize(values: Float32Array, h: number, w: number, outH: number, outW: number): Float32Array {
  const f = Math.fround;
  const scaleY = f(h / outH);
  const scaleX = f(w / outW);
  const at = (y: number, x: number) => values[Math.min(Math.max(y, 0), h - 1) * w + Math.min(Math.max(x, 0), w - 1)]!;
  const out = new Float32Array(outH * outW);
  for (let oy = 0; oy < outH; oy++) {
    const { base: y, t: ty } = sourceIndex(oy, scaleY);
    const wy = cubicWeights(ty);
    for (let ox = 0; ox < outW; ox++) {
      const { base: x, t: tx } = sourceIndex(ox, scaleX);
      const wx = cubicWeights(tx);
      let sum = 0;
      for (let i = 0; i < 4; i++) {
        let row = 0;
        for (let j = 0; j < 4; j++) row = f(row + f(wx[j]! * at(y - 1 + i, x - 1 + j)));
        sum = f(sum + f(wy[i]! * row));
      }
      out[oy * outW + ox] = sum;
    }
  }
  return out;
}

/** The UNet's depth channel [h, w] for a latent of h x w. */
export function depthChannel(depth: DepthMap, h: number, w: number): Float32Array {
  const resized = bicubicResize(depth.values, depth.height, depth.width, h, w);
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
