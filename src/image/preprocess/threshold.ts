// sd-webui-controlnet's "threshold" preprocessor: white where every channel exceeds the threshold
// (np.min(img, axis=2) > thr), black elsewhere, in all channels. Its default threshold is 127.

import { type Raster, createRaster } from '../raster.js';

export function threshold(image: Raster, level = 127): Raster {
  if (image.channels !== 1 && image.channels !== 3) throw new RangeError(`threshold takes a grey or RGB raster (got ${image.channels} channels)`);
  const out = createRaster(image.width, image.height, image.channels);
  const n = image.channels;
  for (let p = 0; p < image.data.length; p += n) {
    let lowest = 255;
    for (let c = 0; c < n; c++) lowest = Math.min(lowest, image.data[p + c]!);
    if (lowest > level) out.data.fill(255, p, p + n);
  }
  return out;
}
