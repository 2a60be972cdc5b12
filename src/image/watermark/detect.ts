// Does an image carry a given payload? Reads it in one channel order, or in both: diffusers' SDXL pipeline
// marks its RGB array as if it were BGR while Stability's scripts convert first, and an image's origin is
// rarely known.

import type { Raster } from '../raster.js';
import { readWatermark } from './dwt-dct.js';
import { type PayloadMatch, comparePayload } from './match.js';
import type { ChannelOrder } from './opencv-yuv.js';
import type { Bit } from './payload.js';

export interface WatermarkDetection extends PayloadMatch {
  /** The reading that agreed best. */
  channelOrder: ChannelOrder;
  decoded: Bit[];
}

/** `orders` to try, in order; the best agreement wins (the first on a tie) and its chance counts every try. */
export function detectWatermark(image: Raster, expected: readonly Bit[], orders: readonly ChannelOrder[] = ['bgr', 'rgb']): WatermarkDetection {
  if (orders.length === 0) throw new RangeError('no channel order to read');
  let best: WatermarkDetection | undefined;
  for (const channelOrder of orders) {
    const decoded = readWatermark(image, expected.length, { channelOrder });
    const match = comparePayload(decoded, expected, orders.length);
    if (!best || match.matchedBits > best.matchedBits) best = { ...match, channelOrder, decoded };
  }
  return best!;
}
