// The in-memory image every src/image function exchanges: 8-bit samples, interleaved (row-major HWC).

export type Channels = 1 | 3 | 4;

export interface Raster {
  width: number;
  height: number;
  /** 1 grey/mask, 3 RGB, 4 RGBA. */
  channels: Channels;
  /** length width * height * channels */
  data: Uint8Array;
}

export function createRaster(width: number, height: number, channels: Channels): Raster {
  return { width, height, channels, data: new Uint8Array(width * height * channels) };
}

/**
 * Copy `src` into `dst` with its top-left corner at (x, y), clipping whatever falls outside, as PIL's
 * Image.paste(im, box=(x, y)) does.
 */
export function paste(dst: Raster, src: Raster, x: number, y: number): void {
  if (src.channels !== dst.channels) {
    throw new RangeError(`cannot paste ${src.channels}-channel image into ${dst.channels}-channel image`);
  }
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(dst.width, x + src.width);
  const y1 = Math.min(dst.height, y + src.height);
  if (x1 <= x0) return;
  for (let row = y0; row < y1; row++) {
    const s = ((row - y) * src.width + (x0 - x)) * src.channels;
    dst.data.set(src.data.subarray(s, s + (x1 - x0) * src.channels), (row * dst.width + x0) * dst.channels);
  }
}
