// np.pad(image, [[0, bottom], [0, right], [0, 0]], mode='edge'): rows and columns added below and to the
// right, each a copy of the nearest edge pixel; and the crop that takes them off again.

import { createRaster, type Raster } from './raster.js';

export function padEdge(image: Raster, right: number, bottom: number): Raster {
  const { width, height, channels: n } = image;
  const out = createRaster(width + right, height + bottom, n);
  for (let y = 0; y < out.height; y++) {
    const from = Math.min(y, height - 1) * width * n;
    const to = y * out.width * n;
    out.data.set(image.data.subarray(from, from + width * n), to);
    for (let x = width; x < out.width; x++) out.data.copyWithin(to + x * n, to + (width - 1) * n, to + width * n);
  }
  return out;
}

/** sd-webui-controlnet's pad64: what brings a side up to a multiple of 64. */
export const pad64 = (side: number): number => Math.ceil(side / 64) * 64 - side;

/**
 * The picture as resize_image_with_pad leaves it at Preprocessor Resolution = its shorter side (the resize a copy):
 * edge-padded to multiples of 64. Its preprocessors run on that and crop the padding off their map, so what they see
 * past the right and bottom edges is the padding, not their own border rule.
 */
export function padEdgeTo64(image: Raster): Raster {
  return padEdge(image, pad64(image.width), pad64(image.height));
}

/** The top-left width x height of `image`. */
export function cropTopLeft(image: Raster, width: number, height: number): Raster {
  const n = image.channels;
  const out = createRaster(width, height, n);
  for (let y = 0; y < height; y++) out.data.set(image.data.subarray(y * image.width * n, (y * image.width + width) * n), y * width * n);
  return out;
}
