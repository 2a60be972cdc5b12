import sharp from 'sharp';
import { gaussianBlurU8 } from './cv-gaussian-u8.js';
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
 * The [0, 1] mask as its 8 bits (A1111 keeps masks as PIL L images; v · 255 of an 8-bit value rounds back to it exactly).
 */
export const maskBytes = (mask: Float32Array): Uint8Array => Uint8Array.from(mask, (v) => Math.round(v * 255));

/**
 * Inpaint's mask blur as A1111 1.10's StableDiffusionProcessingImg2Img.init does it: cv2.GaussianBlur of the 8-bit mask
 * with a kernel of 2 · int(2.5 · blur + 0.5) + 1 taps and sigma = blur, first along x alone (ksize (k, 1)), the result
 * rounded to 8 bits, then along y alone (ksize (1, k)).
 */
export function featherMask(mask: Float32Array, width: number, height: number, blur: number): Float32Array {
  if (blur <= 0) return mask;
  const taps = 2 * Math.trunc(2.5 * blur + 0.5) + 1;
  const across = gaussianBlurU8({ width, height, channels: 1, data: maskBytes(mask) }, blur, { width: taps, height: 1 });
  return Float32Array.from(gaussianBlurU8(across, blur, { width: 1, height: taps }).data, (v) => v / 255);
}

/**
 * Outpaint's seam feather: a Gaussian blur of a [0, 1] mask with the given radius in pixels (sharp computes the
 * Gaussian itself; the seam is diffuse's own, so no reference fixes its kernel).
 */
export async function blurMask(mask: Float32Array, width: number, height: number, radius: number): Promise<Float32Array> {
  if (radius <= 0) return mask;
  const blurred = await sharp(maskBytes(mask), { raw: { width, height, channels: 1 } })
    .blur(Math.max(0.3, radius))
    .raw()
    .toBuffer();
  return Float32Array.from(blurred, (v) => v / 255);
}

export function invertMask(mask: Float32Array): Float32Array {
  return mask.map((v) => 1 - v);
}
