import type { Raster } from '../image/raster.js';
import { roundHalfEven } from '../round-half-even.js';

/**
 * The cheap preview without a decoder: each latent pixel's RGB as a linear function of its 4
 * channels, ComfyUI's Latent2RGBPreviewer with its latent_rgb_factors (comfy/latent_formats.py:
 * SD15 for SD 1.x/2.x latents, SDXL with its bias): rgb = x0 · factors + bias, clamped to [-1, 1],
 * then (v + 1) * 127.5 rounded half to even (torch's round). One pixel per latent: 1/8 of the image's size.
 */

export interface LatentRgbFactors {
  /** [latent channel][R, G, B] */
  factors: readonly (readonly [number, number, number])[];
  bias?: readonly [number, number, number];
}

export const LATENT_RGB: Readonly<Record<'sd15' | 'sdxl', LatentRgbFactors>> = {
  sd15: {
    factors: [
      [0.3512, 0.2297, 0.3227],
      [0.325, 0.4974, 0.235],
      [-0.2829, 0.1762, 0.2721],
      [-0.212, -0.2616, -0.7177],
    ],
  },
  sdxl: {
    factors: [
      [0.3651, 0.4232, 0.4341],
      [-0.2533, -0.0042, 0.1068],
      [0.1076, 0.1111, -0.0362],
      [-0.3165, -0.2492, -0.2188],
    ],
    bias: [0.1084, -0.0175, -0.0011],
  },
};

const f = Math.fround;

/** One image's latents [C, h, w] (the UNet's latent space) -> an h x w RGB raster. */
export function latentToRgb(latents: Float32Array, dims: readonly [number, number, number], table: LatentRgbFactors): Raster {
  const [channels, height, width] = dims;
  if (channels !== table.factors.length) throw new RangeError(`latent-to-RGB factors are for ${table.factors.length} channels, the latents have ${channels}`);
  const plane = height * width;
  const data = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      let v = table.bias ? table.bias[c]! : 0;
      for (let l = 0; l < channels; l++) v += latents[l * plane + i]! * table.factors[l]![c]!;
      data[i * 3 + c] = roundHalfEven(f(f(Math.min(1, Math.max(-1, f(v))) + 1) * 127.5));
    }
  }
  return { width, height, channels: 3, data };
}
