// annotator/lineart's and annotator/lineart_anime's 8-bit maps and sd-webui-controlnet's inversion
// (scripts/preprocessor/legacy/processor.py lineart, lineart_anime: "applied auto inversion"):
// 255 - uint8(clip(value, 0, 255)), the cast truncating, of the network's map in float32.

import { cvResizeCubicF32 } from '../cv-resize-cubic.js';
import { createRaster, type Raster } from '../raster.js';

const f = Math.fround;

function invertedEightBit(values: Float32Array, width: number, height: number): Raster {
  const out = createRaster(width, height, 1);
  for (let i = 0; i < values.length; i++) out.data[i] = 255 - Math.trunc(Math.min(255, Math.max(0, values[i]!)));
  return out;
}

/** lineart: the sigmoid map times 255. */
export function lineartLines(line: Float32Array, width: number, height: number): Raster {
  if (line.length !== width * height) throw new RangeError(`lineartLines: ${line.length} values for ${width}x${height}`);
  return invertedEightBit(line.map((v) => f(v * 255)), width, height);
}

/**
 * lineart_anime: the tanh map [netHeight, netWidth] (the picture resized to multiples of 256) times 127.5 plus 127.5,
 * resized back to width x height by cv2.INTER_CUBIC.
 */
export function lineartAnimeLines(line: Float32Array, netWidth: number, netHeight: number, width: number, height: number): Raster {
  if (line.length !== netWidth * netHeight) throw new RangeError(`lineartAnimeLines: ${line.length} values for ${netWidth}x${netHeight}`);
  const scaled = line.map((v) => f(f(v * 127.5) + 127.5));
  return invertedEightBit(cvResizeCubicF32(scaled, netWidth, netHeight, width, height), width, height);
}
