// Pixels <-> model tensors, with the exact float32 operations of each reference implementation, so the
// bytes we write equal theirs for the same VAE output and the tensors we feed equal theirs for the same image.

import { roundHalfEven } from '../round-half-even.js';
import type { Channels, Raster } from './raster.js';

/**
 * How VAE output becomes 8-bit pixels:
 *  - 'diffusers': VaeImageProcessor.postprocess: (x * 0.5 + 0.5).clamp(0, 1), then numpy_to_pil's
 *    (x * 255).round() (half to even) in float32.
 *  - 'a1111' / 'comfyui' (identical): clamp((x + 1.0) / 2.0, 0, 1), then 255. * x and astype(uint8),
 *    which truncates.
 * For the same tensor about half the samples come out one level lower under 'a1111' than under 'diffusers'.
 */
export type DecodeConvention = 'diffusers' | 'a1111' | 'comfyui';

const f32 = Math.fround;

// NaN survives torch.clamp and becomes 0 in numpy's astype(uint8) on x86 and ARM; we make that explicit.
const clamp01 = (v: number): number => (v < 0 ? 0 : v > 1 ? 1 : v);

function diffusersSample(x: number): number {
  const v = clamp01(f32(f32(x * 0.5) + 0.5));
  return Number.isNaN(v) ? 0 : roundHalfEven(f32(v * 255));
}

function a1111Sample(x: number): number {
  const v = clamp01(f32(f32(x + 1) / 2));
  return Number.isNaN(v) ? 0 : Math.trunc(f32(v * 255));
}

/**
 * A batch of decoded images, float32 NCHW with values nominally in [-1, 1], to one Raster per image.
 * `dims` is [batch, channels, height, width]; channels 1, 3 or 4.
 */
export function tensorToRasters(
  data: Float32Array,
  dims: readonly [number, number, number, number],
  convention: DecodeConvention = 'diffusers',
): Raster[] {
  const [n, c, h, w] = dims;
  if (c !== 1 && c !== 3 && c !== 4) throw new RangeError(`tensor has ${c} channels; expected 1, 3 or 4`);
  if (data.length !== n * c * h * w) throw new RangeError(`tensor has ${data.length} values, dims say ${n * c * h * w}`);
  const sample = convention === 'diffusers' ? diffusersSample : a1111Sample;
  const plane = h * w;
  const out: Raster[] = [];
  for (let b = 0; b < n; b++) {
    const pixels = new Uint8Array(plane * c);
    const base = b * c * plane;
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < plane; i++) pixels[i * c + ch] = sample(data[base + ch * plane + i]!);
    }
    out.push({ width: w, height: h, channels: c as Channels, data: pixels });
  }
  return out;
}

/**
 * Image pixels to the VAE encoder's input, float32 CHW in [-1, 1]: x / 255 then 2 * x - 1, each rounded to
 * float32, as diffusers' VaeImageProcessor.preprocess (pil_to_numpy + normalize) and A1111's img2img do.
 * Written at `offset` of `out` when given (to fill a batch), else into a new array.
 */
export function rasterToTensor(raster: Raster, out?: Float32Array, offset = 0): Float32Array {
  const { width, height, channels, data } = raster;
  const plane = width * height;
  const target = out ?? new Float32Array(plane * channels);
  if (offset + plane * channels > target.length) throw new RangeError('output tensor too small');
  for (let ch = 0; ch < channels; ch++) {
    for (let i = 0; i < plane; i++) target[offset + ch * plane + i] = f32(2 * f32(data[i * channels + ch]! / 255) - 1);
  }
  return target;
}
