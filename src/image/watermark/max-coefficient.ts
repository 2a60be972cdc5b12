// The per-block rule of invisible-watermark's "dwtDct" method (imwatermark/maxDct.py, EmbedMaxDct). Despite
// the name no DCT is taken: the Haar approximation band is cut into 4×4 blocks in row-major order, block n
// carries bit n mod L, and in each block the AC coefficient of largest magnitude (the first, on ties, as
// np.argmax) is moved to the middle of the lower (bit 0) or upper (bit 1) half of its 36-wide cell:
// ±(⌊|c|/36⌋ + 0.25 + 0.5·bit)·36. Reading takes the same coefficient's |c| mod 36 > 18 as a 1, and a bit is
// 1 when more than 127/255 of its blocks vote 1.

import type { Bit } from './payload.js';

const BLOCK = 4;
/** EmbedMaxDct's default scales [0, 36, 36]: Y is skipped, and its channel loop (range(2)) never reaches V. */
export const SCALE = 36;

/** Index in `band` of the block's largest-magnitude AC coefficient. */
function largestAc(band: Float64Array, stride: number, top: number, left: number): number {
  let best = -1;
  let bestMagnitude = -1;
  for (let k = 1; k < BLOCK * BLOCK; k++) {
    const i = (top + Math.floor(k / BLOCK)) * stride + left + (k % BLOCK);
    const magnitude = Math.abs(band[i]!);
    if (magnitude > bestMagnitude) {
      best = i;
      bestMagnitude = magnitude;
    }
  }
  return best;
}

// Python's float floor division of a non-negative value: exact, unlike Math.floor(x / 36) near multiples.
const cellOf = (magnitude: number): number => (magnitude - (magnitude % SCALE)) / SCALE;

function forEachBlock(width: number, height: number, visit: (top: number, left: number, n: number) => void): void {
  const columns = Math.floor(width / BLOCK);
  for (let i = 0; i < Math.floor(height / BLOCK); i++) {
    for (let j = 0; j < columns; j++) visit(i * BLOCK, j * BLOCK, i * columns + j);
  }
}

/** encode_frame: writes `bits` into the approximation band (width × height) in place. */
export function embedBits(band: Float64Array, width: number, height: number, bits: readonly Bit[]): void {
  forEachBlock(width, height, (top, left, n) => {
    const i = largestAc(band, width, top, left);
    const value = band[i]!;
    const moved = (cellOf(Math.abs(value)) + 0.25 + 0.5 * bits[n % bits.length]!) * SCALE;
    band[i] = value >= 0 ? moved : -moved;
  });
}

/** decode_frame and the vote: `length` bits read from the band. */
export function readBits(band: Float64Array, width: number, height: number, length: number): Bit[] {
  const ones = new Array<number>(length).fill(0);
  const votes = new Array<number>(length).fill(0);
  forEachBlock(width, height, (top, left, n) => {
    const magnitude = Math.abs(band[largestAc(band, width, top, left)]!);
    votes[n % length]!++;
    if (magnitude % SCALE > 0.5 * SCALE) ones[n % length]!++;
  });
  // np.mean of the 0/1 scores, then avg * 255 > 127 (a bit without blocks averages to NaN and reads 0)
  return ones.map((k, b) => ((k / votes[b]!) * 255 > 127 ? 1 : 0));
}
