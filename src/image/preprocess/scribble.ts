// sd-webui-controlnet's scribble_xdog, network-free, on the picture edge-padded to multiples of 64 as its
// resize_image_with_pad leaves it (the padding is what the blur sees past the right and bottom edges), then
// cropped back: white (in every channel) where 2 · (255 - dog) > threshold (default 32) in uint8 arithmetic,
// dog = uint8(clip(255 - min over channels of (blur σ5 - blur σ0.5))) of the float picture; black elsewhere.

import { cropTopLeft, padEdgeTo64 } from '../pad-edge.js';
import { createRaster, type Raster } from '../raster.js';
import { gaussianBlurFloat } from './cv-gaussian.js';

/** The picture as float32 after resize_image_with_pad's edge padding. */
export function paddedFloat(picture: Raster): { padded: Raster; values: Float32Array } {
  const padded = padEdgeTo64(picture);
  return { padded, values: Float32Array.from(padded.data) };
}

/** Per pixel, the smallest over the channels of a - b, in float32. */
export function channelMinDifference(a: Float32Array, b: Float32Array, channels: number): Float32Array {
  const out = new Float32Array(a.length / channels);
  for (let p = 0; p < out.length; p++) {
    let lowest = Infinity;
    for (let c = 0; c < channels; c++) lowest = Math.min(lowest, Math.fround(a[p * channels + c]! - b[p * channels + c]!));
    out[p] = lowest;
  }
  return out;
}

export function scribbleXdog(picture: Raster, threshold = 32): Raster {
  const { padded, values } = paddedFloat(picture);
  const fine = gaussianBlurFloat(values, padded.width, padded.height, padded.channels, 0.5);
  const coarse = gaussianBlurFloat(values, padded.width, padded.height, padded.channels, 5.0);
  const dog = channelMinDifference(coarse, fine, padded.channels).map((v) => Math.trunc(Math.min(255, Math.max(0, Math.fround(255 - v)))));
  // dog is uint8 in numpy, so 2 * (255 - dog) wraps modulo 256: very dark lines (255 - dog >= 128) come out black,
  // as they do in the extension.
  const out = createRaster(padded.width, padded.height, padded.channels);
  for (let p = 0; p < dog.length; p++) if (((2 * (255 - dog[p]!)) & 255) > threshold) out.data.fill(255, p * padded.channels, (p + 1) * padded.channels);
  return cropTopLeft(out, picture.width, picture.height);
}
