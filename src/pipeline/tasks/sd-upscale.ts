// img2img's "SD upscale" (A1111's scripts/sd_upscale.py): the picture enlarged by an upscaler, cut by
// images.split_grid into tiles of the request's width x height with `overlap` shared, each tile painted as
// its own img2img pass of the one loop with seed + its index (A1111 sets p.seed = processed.seed + 1 after
// each tile), and the painted tiles put back by images.combine_grid's linear feather. A1111's upscaler
// "None" tiles the picture as it is.

import { UsageError } from '../../errors.js';
import type { Raster } from '../../image/raster.js';
import { combineGrid, cropTile, splitGrid } from '../../image/tile-grid.js';
import { upscalerResize } from '../../image/upscaler-resize.js';
import type { ModelBundle } from '../bundle.js';
import { denoisePass } from '../denoise.js';
import { a1111UpscaleTarget, upscaleRaster } from '../upscale/upscale.js';
import type { GenerationRequest, PassRequest, PipelineListener, SdUpscale, Timings } from '../types.js';
import { withoutTasks } from './inpaint.js';

/** A1111's default "Tile overlap". */
export const DEFAULT_SD_UPSCALE_OVERLAP = 64;

/** The name A1111 records as "SD upscale upscaler". */
export function sdUpscalerName(upscaler: SdUpscale['upscaler']): string {
  return upscaler.kind === 'model' ? upscaler.name : { lanczos: 'Lanczos', nearest: 'Nearest', none: 'None' }[upscaler.kind];
}

/** The size the picture is tiled at: Upscaler.upscale's int(side × scale // 8 × 8), or the picture's own with "None". */
export function sdUpscaleSize(picture: { width: number; height: number }, sd: SdUpscale): { width: number; height: number } {
  return sd.upscaler.kind === 'none' ? { width: picture.width, height: picture.height } : a1111UpscaleTarget(picture.width, picture.height, sd.scale);
}

/** The picture as the tiles see it. */
async function upscaled(bundle: ModelBundle, picture: Raster, sd: SdUpscale): Promise<Raster> {
  const { width, height } = sdUpscaleSize(picture, sd);
  const kind = sd.upscaler.kind;
  if (kind === 'none') return picture;
  if (kind !== 'model') return upscalerResize(picture, width, height, kind);
  if (!bundle.upscaler) throw new UsageError('the request asks for SD upscale with an upscaler model, which this model was loaded without: load it with LoadOptions.upscaler (the CLI: --sd-upscale-upscaler)');
  return upscaleRaster(bundle.upscaler, picture, { width, height });
}

export interface SdUpscaleResult {
  image: Raster;
  timings: Timings;
  /** The tiles' count and where each was cut (x, y), in painting order. */
  tiles: [number, number][];
}

/** One image of an SD upscale request (batch size 1: A1111's batches of tiles are not reproduced). */
export async function sdUpscale(bundle: ModelBundle, request: GenerationRequest, listener: PipelineListener): Promise<SdUpscaleResult> {
  const sd = request.sdUpscale!;
  const picture = await upscaled(bundle, request.init!.image, sd);
  const grid = splitGrid(picture.width, picture.height, request.width, request.height, sd.overlap);
  const base: PassRequest = withoutTasks(request);
  const timings: Timings = { textEncoder: 0, denoise: 0, vaeDecode: 0, total: 0 };
  const tiles: [number, number][] = [];
  const passes = grid.rows.length * grid.cols.length;
  const image = await combineGrid(grid, async (r, c) => {
    const [x, y] = [grid.cols[c]!, grid.rows[r]!];
    const index = tiles.push([x, y]) - 1;
    listener({ kind: 'pass', image: 1, images: 1, pass: index + 1, passes });
    const tile = cropTile(picture, x, y, request.width, request.height);
    const result = await denoisePass(bundle, { ...base, init: { ...base.init!, image: tile }, seed: (request.seed + index) >>> 0, batchSize: 1 }, listener);
    for (const k of ['textEncoder', 'denoise', 'vaeDecode', 'total'] as const) timings[k] += result.timings[k];
    return result.images[0]!.image;
  });
  return { image, timings, tiles };
}
