import { type Raster, createRaster } from './raster.js';

/** An RGB raster with an alpha plane put back (RGBA), or the RGB raster itself when there is none. */
export function withAlpha(rgb: Raster, alpha: Raster | null): Raster {
  if (!alpha) return rgb;
  if (rgb.channels !== 3 || alpha.channels !== 1 || alpha.width !== rgb.width || alpha.height !== rgb.height) {
    throw new RangeError(`cannot join a ${rgb.width}x${rgb.height}x${rgb.channels} image and a ${alpha.width}x${alpha.height}x${alpha.channels} alpha plane`);
  }
  const out = createRaster(rgb.width, rgb.height, 4);
  for (let i = 0; i < rgb.width * rgb.height; i++) {
    out.data[4 * i] = rgb.data[3 * i]!;
    out.data[4 * i + 1] = rgb.data[3 * i + 1]!;
    out.data[4 * i + 2] = rgb.data[3 * i + 2]!;
    out.data[4 * i + 3] = alpha.data[i]!;
  }
  return out;
}
