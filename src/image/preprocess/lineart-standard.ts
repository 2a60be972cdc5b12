// sd-webui-controlnet's lineart_standard ("from white bg & black line"), network-free: on the picture
// edge-padded to multiples of 64 (resize_image_with_pad), in float32 as numpy computes it,
//   intensity = clip(min over channels of (blur σ6 - picture), 0, 255)
//   intensity /= max(16, median of the intensities above 8, over the padded picture)
//   out = uint8(clip(intensity · 127, 0, 255))
// then cropped back; grey in every channel.

import { cropTopLeft } from '../pad-edge.js';
import { createRaster, type Raster } from '../raster.js';
import { gaussianBlurFloat } from './cv-gaussian.js';
import { channelMinDifference, paddedFloat } from './scribble.js';

/** np.median of float32 values: the middle one, or the float32 mean of the two middle ones. */
function float32Median(values: Float32Array): number {
  if (values.length === 0) return NaN;
  const sorted = Float32Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : Math.fround(Math.fround(sorted[mid - 1]! + sorted[mid]!) / 2);
}

export function lineartStandard(picture: Raster): Raster {
  const { padded, values } = paddedFloat(picture);
  const blurred = gaussianBlurFloat(values, padded.width, padded.height, padded.channels, 6.0);
  const intensity = channelMinDifference(blurred, values, padded.channels).map((v) => Math.min(255, Math.max(0, v)));
  const median = float32Median(intensity.filter((v) => v > 8));
  // Python's max(16, nan) is 16: a picture with no line at all divides by 16.
  const divisor = median > 16 ? median : 16;
  const out = createRaster(padded.width, padded.height, padded.channels);
  for (let p = 0; p < intensity.length; p++) {
    const v = Math.fround(Math.fround(intensity[p]! / divisor) * 127);
    out.data.fill(Math.trunc(Math.min(255, Math.max(0, v))), p * padded.channels, (p + 1) * padded.channels);
  }
  return cropTopLeft(out, picture.width, picture.height);
}
