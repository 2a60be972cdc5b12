// invisible-watermark's "dwtDct" watermark on an 8-bit image, byte for byte as the Python library does it
// (WatermarkEncoder.encode / WatermarkDecoder.decode, imwatermark 0.2.0, with OpenCV and PyWavelets):
//   BGR -> YUV (cv2, uint8) -> the U plane's top-left rows//4*4 × cols//4*4 region -> Haar dwt2 (float64)
//   -> bits into the approximation band -> idwt2 -> back into the uint8 U plane -> YUV -> BGR (cv2, uint8).
// Two quirks of the library are part of its output and reproduced: idwt2 gets the detail bands as
// (cV, cH, cD) instead of (cH, cV, cD), which transposes every 2×2 pixel block of the region's U; and the
// float result is stored into uint8 by C conversion, truncating (12.99 -> 12), not rounding. Every pixel goes
// through the uint8 YUV round trip, the unmarked border and Y and V included.

import { DiffuseError } from '../../errors.js';
import { type Raster } from '../raster.js';
import { haarDwt2, haarIdwt2 } from './haar.js';
import { embedBits, readBits } from './max-coefficient.js';
import { type ChannelOrder, type YuvPlanes, fromYuv, toYuv } from './opencv-yuv.js';
import { type Bit, SDXL_WATERMARK_BITS } from './payload.js';

/** The library refuses images with fewer pixels (r*c < 256*256). */
export const MIN_WATERMARK_PIXELS = 256 * 256;

export interface WatermarkOptions {
  /** Default 'bgr' (the library's documented use; see ChannelOrder). */
  channelOrder?: ChannelOrder;
}

export class WatermarkImageTooSmallError extends DiffuseError {
  constructor(readonly width: number, readonly height: number) {
    super(`the image is ${width}x${height}; an invisible watermark needs at least ${MIN_WATERMARK_PIXELS} pixels (e.g. 256x256)`, 2);
  }
}

/** Whether an image of this size can carry (and be checked for) a watermark. */
export const watermarkFits = (width: number, height: number): boolean => width * height >= MIN_WATERMARK_PIXELS;

function checkImage(image: Raster): void {
  if (image.channels !== 3 && image.channels !== 4) throw new RangeError(`watermarks need an RGB or RGBA raster (got ${image.channels} channels)`);
  if (!watermarkFits(image.width, image.height)) throw new WatermarkImageTooSmallError(image.width, image.height);
}

/** The marked region: whole multiples of 4 rows and columns from the top-left corner. */
const region = (planes: YuvPlanes): { width: number; height: number } => ({
  width: Math.floor(planes.width / 4) * 4,
  height: Math.floor(planes.height / 4) * 4,
});

/**
 * A copy of `image` (RGB or RGBA; alpha is copied unchanged) carrying `bits`, as
 * WatermarkEncoder().set_watermark('bits', bits).encode(bgr, 'dwtDct'). Default payload: the SDXL message.
 * Throws WatermarkImageTooSmallError below 256×256 pixels.
 */
export function embedWatermark(image: Raster, bits: readonly Bit[] = SDXL_WATERMARK_BITS, options: WatermarkOptions = {}): Raster {
  checkImage(image);
  if (bits.length === 0) throw new RangeError('an empty watermark payload');
  const order = options.channelOrder ?? 'bgr';
  const planes = toYuv(image, order);
  const { width, height } = region(planes);
  const bands = haarDwt2(planes.u, planes.width, width, height);
  embedBits(bands.approx, bands.width, bands.height, bits);
  const marked = haarIdwt2({ ...bands, horizontal: bands.vertical, vertical: bands.horizontal });
  for (let r = 0; r < height; r++) {
    // a typed-array store truncates toward zero (and wraps), as numpy's float64 -> uint8 assignment does
    planes.u.set(marked.subarray(r * width, (r + 1) * width), r * planes.width);
  }
  const out: Raster = { ...image, data: image.data.slice() };
  fromYuv(planes, order, out);
  return out;
}

/** The `length` bits the library's decoder reads from `image` (WatermarkDecoder('bits', length).decode). */
export function readWatermark(image: Raster, length: number, options: WatermarkOptions = {}): Bit[] {
  checkImage(image);
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`cannot read ${length} watermark bits`);
  const planes = toYuv(image, options.channelOrder ?? 'bgr');
  const { width, height } = region(planes);
  const bands = haarDwt2(planes.u, planes.width, width, height);
  return readBits(bands.approx, bands.width, bands.height, length);
}
