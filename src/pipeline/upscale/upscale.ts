// A picture through an upscaler the way A1111 runs ESRGAN-family models: tiles of `tile` pixels with
// `overlap` (modules/upscaler_utils.upscale_with_model: images.split_grid, each tile through the model and
// truncated to 8 bits, images.combine_grid at the model's scale with its linear feather), repeated until the
// target size is reached (at most 3 passes) and then resized to it with PIL's Lanczos
// (modules/upscaler.Upscaler.upscale). Memory: the input, the output, one band of upscaled tiles and one
// tile's float tensors; never a float copy of the whole picture.

import { UsageError } from '../../errors.js';
import { pilResize } from '../../image/pil-resample.js';
import type { Raster } from '../../image/raster.js';
import { combineGrid, cropTile, scaleGrid, splitGrid } from '../../image/tile-grid.js';
import { type ChannelOrder, type Upscaler, upscaleTile } from './model.js';

/** A1111's defaults (opts.ESRGAN_tile, opts.ESRGAN_tile_overlap). */
export const DEFAULT_TILE = 192;
export const DEFAULT_TILE_OVERLAP = 8;

export interface TileOptions {
  /** Tile side in input pixels; 0 runs the whole picture at once. Default 192. */
  tile?: number;
  /** Pixels neighbouring tiles share (input pixels). Default 8. */
  overlap?: number;
  /** Default 'rgb'. */
  channelOrder?: ChannelOrder;
  /** Called after each tile: done of total, for progress. */
  onTile?: (done: number, total: number) => void;
}

export interface UpscaleOptions extends TileOptions {
  /** The size wanted; absent: one pass of the model, no resize. */
  width?: number;
  height?: number;
}

/** The tile and overlap a request may use, or a usage error naming what is wrong. */
export function checkTiling(tile: number, overlap: number): void {
  if (!Number.isInteger(tile) || tile < 0) throw new UsageError(`--tile must be 0 (no tiling) or a whole number of pixels (got ${tile})`);
  if (!Number.isInteger(overlap) || overlap < 0) throw new UsageError(`--tile-overlap must be a whole number of pixels (got ${overlap})`);
  if (tile > 0 && tile < 2 * overlap) throw new UsageError(`--tile ${tile} is smaller than twice --tile-overlap ${overlap}: tiles would share more than they add; use a larger tile or a smaller overlap`);
  if (tile > 0 && tile < 8) throw new UsageError(`--tile ${tile} is too small: use 8 pixels or more (A1111's default is ${DEFAULT_TILE}), or 0 for no tiling`);
}

/**
 * One pass of the model over the whole picture, tiled as A1111 tiles it. Where a side is not longer than
 * the tile, the tile shrinks to that side (A1111 would place a larger tile at a negative offset and feather
 * its first columns into black, tiled_upscale_2's min(tile, h, w) does not).
 */
export async function upscaleOnce(u: Upscaler, src: Raster, options: TileOptions = {}): Promise<Raster> {
  const { tile = DEFAULT_TILE, overlap = DEFAULT_TILE_OVERLAP, channelOrder = 'rgb', onTile } = options;
  checkTiling(tile, overlap);
  const rgb = src.channels === 3 ? src : dropAlpha(src);
  if (tile === 0 || (rgb.width <= tile && rgb.height <= tile)) {
    const out = await upscaleTile(u, rgb, channelOrder);
    onTile?.(1, 1);
    return out;
  }
  const tileW = Math.min(tile, rgb.width);
  const tileH = Math.min(tile, rgb.height);
  const grid = splitGrid(rgb.width, rgb.height, tileW, tileH, Math.min(overlap, tileW - 1, tileH - 1));
  const total = grid.rows.length * grid.cols.length;
  let done = 0;
  return combineGrid(scaleGrid(grid, u.scale), async (r, c) => {
    const out = await upscaleTile(u, cropTile(rgb, grid.cols[c]!, grid.rows[r]!, tileW, tileH), channelOrder);
    onTile?.(++done, total);
    return out;
  });
}

/**
 * Upscaler.upscale (A1111 1.10's, as src/image/upscaler-resize.ts follows it for the built-in upscalers):
 * while the picture is smaller than width x height, a pass of the model (at most 3; a scale-1 model stops
 * after one), then PIL Lanczos to exactly that size. Without a size: one pass.
 */
export async function upscaleRaster(u: Upscaler, src: Raster, options: UpscaleOptions = {}): Promise<Raster> {
  const { width, height } = options;
  if (width === undefined || height === undefined) return upscaleOnce(u, src, options);
  let img = src;
  for (let pass = 0; pass < 3 && (img.width < width || img.height < height); pass++) {
    img = await upscaleOnce(u, img, options);
    if (u.scale === 1) break;
  }
  return img.width === width && img.height === height ? img : pilResize(img, width, height, 'lanczos');
}

/** A1111's target for "upscale by": int(side * scale // 8 * 8) (modules/upscaler.py), at least 8. */
export function a1111UpscaleTarget(width: number, height: number, scale: number): { width: number; height: number } {
  const side = (v: number) => Math.max(8, Math.trunc(Math.floor((v * scale) / 8) * 8));
  return { width: side(width), height: side(height) };
}

function dropAlpha(src: Raster): Raster {
  const out = new Uint8Array(src.width * src.height * 3);
  for (let i = 0, n = src.width * src.height; i < n; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = src.data[i * src.channels + (src.channels === 1 ? 0 : c)]!;
  return { width: src.width, height: src.height, channels: 3, data: out };
}
