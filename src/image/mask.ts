import sharp from 'sharp';
import type { Raster } from './raster.js';

/** PIL's convert('L'): ITU-R 601 luma in 16-bit fixed point, as diffusers' mask processor reads an RGB mask. */
export function luminance(image: Raster): Float32Array {
  const n = image.width * image.height;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (image.channels === 1) {
      out[i] = image.data[i]! / 255;
      continue;
    }
    const p = i * image.channels;
    out[i] = ((image.data[p]! * 19595 + image.data[p + 1]! * 38470 + image.data[p + 2]! * 7471 + 0x8000) >> 16) / 255;
  }
  return out;
}

/**
 * A Gaussian blur of a [0, 1] mask with the given radius in pixels (A1111's --mask-blur; PIL's
 * GaussianBlur(radius) approximates a Gaussian of sigma = radius with box blurs, sharp computes
 * the Gaussian itself, so edges differ from A1111 by a level or two).
 */
export async function blurMask(mask: Float32Array, width: number, height: number, radius: number): Promise<Float32Array> {
  if (radius <= 0) return mask;
  const bytes = Uint8Array.from(mask, (v) => Math.round(v * 255));
  const blurred = await sharp(bytes, { raw: { width, height, channels: 1 } })
    .blur(Math.max(0.3, radius))
    .raw()
    .toBuffer();
  return Float32Array.from(blurred, (v) => v / 255);
}

export function invertMask(mask: Float32Array): Float32Array {
  return mask.map((v) => 1 - v);
}
