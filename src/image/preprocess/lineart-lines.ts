// annotator/lineart's 8-bit map and sd-webui-controlnet's inversion (scripts/preprocessor/legacy/processor.py
// lineart: "applied auto inversion"): 255 - uint8(clip(float32(line * 255), 0, 255)), the cast truncating.

import { createRaster, type Raster } from '../raster.js';

export function lineartLines(line: Float32Array, width: number, height: number): Raster {
  if (line.length !== width * height) throw new RangeError(`lineartLines: ${line.length} values for ${width}x${height}`);
  const out = createRaster(width, height, 1);
  for (let i = 0; i < line.length; i++) out.data[i] = 255 - Math.trunc(Math.min(255, Math.max(0, Math.fround(line[i]! * 255))));
  return out;
}
