// A1111's img2img resize modes (modules/images.py resize_image, modes 0-2), which diffusers'
// VaeImageProcessor.resize also implements ("default", "crop", "fill"): same arithmetic, same PIL calls.

import { type Raster, createRaster, paste } from './raster.js';
import { pilResize } from './pil-resample.js';

export type ResizeMode =
  /** Stretch to the target size, ignoring aspect ratio (A1111 "Just resize", diffusers "default"). */
  | 'just-resize'
  /** Scale to cover the target, centre, cut the overflow (A1111 "Crop and resize", diffusers "crop"). */
  | 'crop-and-resize'
  /** Scale to fit inside, centre, fill the bars by stretching the edge rows/columns
   *  (A1111 "Resize and fill", diffusers "fill" with its default fill_color None). */
  | 'resize-and-fill';

const floorDiv = (a: number, b: number): number => Math.floor(a / b);

// The reference would fail with a zero-size PIL resize for extreme aspect ratios; keep at least one pixel.
const atLeast1 = (v: number): number => Math.max(1, v);

/** Bring `src` to exactly width x height as `mode` says. Bars and cropped areas outside the image are black (0). */
export function fitToSize(src: Raster, width: number, height: number, mode: ResizeMode): Raster {
  if (mode === 'just-resize') return pilResize(src, width, height);
  const ratio = width / height;
  const srcRatio = src.width / src.height;
  const cover = mode === 'crop-and-resize';
  const fullWidth = cover ? ratio > srcRatio : ratio < srcRatio;
  const fullHeight = cover ? ratio <= srcRatio : ratio >= srcRatio;
  const srcW = fullWidth ? width : atLeast1(floorDiv(src.width * height, src.height));
  const srcH = fullHeight ? height : atLeast1(floorDiv(src.height * width, src.width));
  const resized = pilResize(src, srcW, srcH);
  const out = createRaster(width, height, src.channels);
  paste(out, resized, floorDiv(width, 2) - floorDiv(srcW, 2), floorDiv(height, 2) - floorDiv(srcH, 2));
  if (cover) return out;

  // The bars use PIL's default filter (BICUBIC): A1111 and diffusers call resize() without one there.
  if (ratio < srcRatio) {
    const fillHeight = floorDiv(height, 2) - floorDiv(srcH, 2);
    if (fillHeight > 0) {
      paste(out, pilResize(resized, width, fillHeight, 'bicubic', [0, 0, width, 0]), 0, 0);
      paste(out, pilResize(resized, width, fillHeight, 'bicubic', [0, resized.height, width, resized.height]), 0, fillHeight + srcH);
    }
  } else if (ratio > srcRatio) {
    const fillWidth = floorDiv(width, 2) - floorDiv(srcW, 2);
    if (fillWidth > 0) {
      paste(out, pilResize(resized, fillWidth, height, 'bicubic', [0, 0, 0, height]), 0, 0);
      paste(out, pilResize(resized, fillWidth, height, 'bicubic', [resized.width, 0, resized.width, height]), fillWidth + srcW, 0);
    }
  }
  return out;
}
