// A1111's tile grid (modules/images.py split_grid and combine_grid), which both its ESRGAN upscaler
// (upscaler_utils.upscale_with_model) and the "SD upscale" script use: tiles of a fixed size spread evenly
// over the picture with at least `overlap` pixels shared, and put back with a linear feather across each
// overlap — first the tiles of a row left to right, then the rows top to bottom — through PIL's masked
// paste (8-bit mask, DIV255 rounding). Reproduced to the byte (test/upscale-grid.test.ts against A1111's
// code run by tools/make_upscale_fixture.py).
//
// combineGrid streams: it asks for one tile at a time and keeps one band of tile rows beside the output,
// so nothing of the size of the whole picture exists but the output itself.

import { type Raster, createRaster, paste } from './raster.js';

export interface TileGrid {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  overlap: number;
  /** Top edge of each row of tiles. */
  rows: number[];
  /** Left edge of each tile in a row (the same for every row). */
  cols: number[];
}

/** The tile edges along one side, as split_grid computes them. */
function edges(size: number, tile: number, overlap: number): number[] {
  // A1111 makes no tile when the side is not longer than the overlap (ceil(<= 0)); one tile is the sensible reading
  const count = Math.max(1, Math.ceil((size - overlap) / (tile - overlap)));
  const step = count > 1 ? (size - tile) / (count - 1) : 0;
  return Array.from({ length: count }, (_, i) => {
    const at = Math.trunc(i * step);
    return at + tile >= size ? size - tile : at;
  });
}

/**
 * split_grid(image, tile_w, tile_h, overlap). A side shorter than its tile gets one tile at 0 that
 * reaches past the picture (cropTile fills the outside with black, as PIL's crop does).
 */
export function splitGrid(width: number, height: number, tileWidth: number, tileHeight: number, overlap: number): TileGrid {
  if (!(overlap >= 0 && overlap < tileWidth && overlap < tileHeight)) throw new RangeError(`overlap ${overlap} must be smaller than the ${tileWidth}x${tileHeight} tile`);
  return { width, height, tileWidth, tileHeight, overlap, rows: edges(height, tileHeight, overlap), cols: edges(width, tileWidth, overlap) };
}

/** The grid with every length multiplied by `scale`: the grid of the upscaled tiles. */
export function scaleGrid(grid: TileGrid, scale: number): TileGrid {
  const times = (v: number) => v * scale;
  return {
    width: grid.width * scale,
    height: grid.height * scale,
    tileWidth: grid.tileWidth * scale,
    tileHeight: grid.tileHeight * scale,
    overlap: grid.overlap * scale,
    rows: grid.rows.map(times),
    cols: grid.cols.map(times),
  };
}

/** image.crop((x, y, x + w, y + h)): what lies outside the picture is black (and transparent). */
export function cropTile(src: Raster, x: number, y: number, width: number, height: number): Raster {
  const tile = createRaster(width, height, src.channels);
  paste(tile, src, -x, -y);
  return tile;
}

/** combine_grid's masks: make_mask_image(arange(overlap, float32) * 255 / overlap), truncated to uint8. */
function featherRamp(overlap: number): Uint8Array {
  return Uint8Array.from({ length: overlap }, (_, i) => Math.trunc(Math.fround((i * 255) / overlap)));
}

// PIL's DIV255 (Paste.c's BLEND): (a + 128 + ((a + 128) >> 8)) >> 8.
const div255 = (v: number): number => {
  const t = v + 128;
  return ((t >> 8) + t) >> 8;
};

/**
 * Image.paste(src.crop(region), (x, y), mask) for a mask that varies along one axis only: `ramp[i]` weights
 * src in column i (axis 'x') or row i (axis 'y') of the region; region is src's first `ramp.length`
 * columns or rows.
 */
function pasteFeathered(dst: Raster, src: Raster, x: number, y: number, ramp: Uint8Array, axis: 'x' | 'y'): void {
  const ch = src.channels;
  const w = axis === 'x' ? ramp.length : src.width;
  const h = axis === 'y' ? ramp.length : src.height;
  for (let row = 0; row < h; row++) {
    const dy = y + row;
    if (dy < 0 || dy >= dst.height) continue;
    for (let col = 0; col < w; col++) {
      const dx = x + col;
      if (dx < 0 || dx >= dst.width) continue;
      const m = ramp[axis === 'x' ? col : row]!;
      const s = (row * src.width + col) * ch;
      const d = (dy * dst.width + dx) * ch;
      for (let c = 0; c < ch; c++) dst.data[d + c] = div255(dst.data[d + c]! * (255 - m) + src.data[s + c]! * m);
    }
  }
}

/** src without its first `skip` columns (axis 'x') or rows (axis 'y'). */
function cropFrom(src: Raster, skip: number, axis: 'x' | 'y'): Raster {
  return axis === 'x' ? cropTile(src, skip, 0, src.width - skip, src.height) : cropTile(src, 0, skip, src.width, src.height - skip);
}

/**
 * combine_grid: the output of grid.width x grid.height, each tile asked for once, in order (row by row,
 * left to right), as `tile(row, col)` of grid.tileWidth x grid.tileHeight. `channels` of the tiles (3).
 */
export async function combineGrid(grid: TileGrid, tile: (row: number, col: number) => Promise<Raster>, channels: 3 | 4 = 3): Promise<Raster> {
  const out = createRaster(grid.width, grid.height, channels);
  const rampX = featherRamp(grid.overlap);
  const rampY = rampX;
  for (let r = 0; r < grid.rows.length; r++) {
    const band = createRaster(grid.width, grid.tileHeight, channels);
    for (let c = 0; c < grid.cols.length; c++) {
      const x = grid.cols[c]!;
      const t = await tile(r, c);
      if (t.width !== grid.tileWidth || t.height !== grid.tileHeight || t.channels !== channels) {
        throw new RangeError(`tile ${r},${c} is ${t.width}x${t.height}x${t.channels}, not ${grid.tileWidth}x${grid.tileHeight}x${channels}`);
      }
      if (x === 0) {
        paste(band, t, 0, 0);
        continue;
      }
      pasteFeathered(band, t, x, 0, rampX, 'x');
      paste(band, cropFrom(t, grid.overlap, 'x'), x + grid.overlap, 0);
    }
    const y = grid.rows[r]!;
    if (y === 0) {
      paste(out, band, 0, 0);
      continue;
    }
    pasteFeathered(out, band, 0, y, rampY, 'y');
    paste(out, cropFrom(band, grid.overlap, 'y'), 0, y + grid.overlap);
  }
  return out;
}
