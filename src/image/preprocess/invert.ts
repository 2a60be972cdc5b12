// sd-webui-controlnet's "invert" preprocessor (white background, black lines -> what line-art ControlNets
// expect): 255 - value in every channel.

import type { Raster } from '../raster.js';

export function invert(image: Raster): Raster {
  return { ...image, data: image.data.map((v) => 255 - v) };
}
