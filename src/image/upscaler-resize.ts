import { pilNearest, pilResize } from './pil-resample.js';
import type { Raster } from './raster.js';

/** AUTOMATIC1111's built-in image upscalers: PIL's Lanczos or nearest, or none (the final Lanczos resize alone). */
export type BuiltinUpscaler = 'lanczos' | 'nearest' | 'none';

/**
 * A1111's images.resize_image(0, picture, width, height, upscaler_name) (just resize) with a built-in
 * upscaler: Upscaler.upscale resizes by the scale to int(w · scale) with the upscaler (up to three
 * times while short of the target floored to a multiple of 8), then Lanczos to that multiple of 8,
 * then Lanczos to the exact size; without an upscaler (or shrinking), Lanczos alone.
 */
export function upscalerResize(src: Raster, width: number, height: number, upscaler: BuiltinUpscaler): Raster {
  let img = src;
  const scale = Math.max(width / img.width, height / img.height);
  if (upscaler !== 'none' && scale > 1) {
    const destW = Math.trunc(Math.floor((img.width * scale) / 8) * 8);
    const destH = Math.trunc(Math.floor((img.height * scale) / 8) * 8);
    for (let i = 0; i < 3; i++) {
      if (img.width >= destW && img.height >= destH) break;
      const before = [img.width, img.height];
      const w = Math.trunc(img.width * scale);
      const h = Math.trunc(img.height * scale);
      img = upscaler === 'lanczos' ? pilResize(img, w, h, 'lanczos') : pilNearest(img, w, h);
      if (before[0] === img.width && before[1] === img.height) break;
    }
    if (img.width !== destW || img.height !== destH) img = pilResize(img, destW, destH, 'lanczos');
  }
  return img.width === width && img.height === height ? img : pilResize(img, width, height, 'lanczos');
}
