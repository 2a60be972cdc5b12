// OpenCV's 3×3 Sobel derivatives of an 8-bit image into 16-bit integers, as cv2.Sobel(src, CV_16S, 1, 0) and
// (0, 1) with BORDER_REPLICATE compute them (what cv2.Canny uses): the kernels [-1 0 1] across and [1 2 1]
// along, every channel on its own. Integer arithmetic, so any summation order gives the same values.

import type { Raster } from '../raster.js';

export interface Gradients {
  /** d/dx (right minus left) and d/dy (below minus above), interleaved like the image's channels. */
  dx: Int16Array;
  dy: Int16Array;
}

export function sobel3(image: Raster): Gradients {
  const { width, height, channels, data } = image;
  const dx = new Int16Array(data.length);
  const dy = new Int16Array(data.length);
  const stride = width * channels;
  for (let y = 0; y < height; y++) {
    const above = Math.max(y - 1, 0) * stride;
    const here = y * stride;
    const below = Math.min(y + 1, height - 1) * stride;
    for (let x = 0; x < width; x++) {
      const left = Math.max(x - 1, 0) * channels;
      const centre = x * channels;
      const right = Math.min(x + 1, width - 1) * channels;
      for (let c = 0; c < channels; c++) {
        const aboveLeft = data[above + left + c]!;
        const aboveRight = data[above + right + c]!;
        const belowLeft = data[below + left + c]!;
        const belowRight = data[below + right + c]!;
        dx[here + centre + c] = aboveRight - aboveLeft + 2 * (data[here + right + c]! - data[here + left + c]!) + belowRight - belowLeft;
        dy[here + centre + c] = belowLeft - aboveLeft + 2 * (data[below + centre + c]! - data[above + centre + c]!) + belowRight - aboveRight;
      }
    }
  }
  return { dx, dy };
}
