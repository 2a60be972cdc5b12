import { extname } from 'node:path';
import { encodeImage } from '../image/encode-image.js';
import { xyzGrid } from '../image/grid.js';
import { imageFormatOf } from '../image/image-format.js';
import { formatInfotext, metadataInfotext, metadataParameters } from '../image/infotext.js';
import { planOutputs, preflightOutputs, type OutputTarget } from '../image/output-path.js';
import type { Raster } from '../image/raster.js';
import { writeFileAtomic } from '../image/write.js';
import type { GeneratedImage } from '../pipeline/types.js';
import type { Settings } from '../settings/options.js';
import type { XyzPlan } from '../settings/xyz.js';
import { nameVars, type ImageSink } from './image-sink.js';

export interface XyzOutputOptions {
  plan: XyzPlan;
  target: OutputTarget;
  settings: Settings;
  labels: boolean;
  keepTiles: boolean;
  json: boolean;
}

/** A folder's grid is named as A1111 names its grids, with the seed and prompt after. */
const GRID_TEMPLATE = 'xyz_grid-{seed}-{prompt}';

/**
 * --xyz's output: every tile kept until the last is made, then pasted into one grid (image/grid.ts)
 * written to -o, with the first tile's parameters and the axes in its metadata as A1111 records
 * them. --xyz-keep-tiles also writes each tile as a run without --xyz would (a file target's tiles
 * are NAME-tile-01.png, ...). Names are checked before anything runs.
 */
export async function xyzOutput(options: XyzOutputOptions): Promise<ImageSink> {
  const { plan, target, settings } = options;
  const count = plan.tiles.length;
  const tileTarget: OutputTarget | undefined = options.keepTiles ? (target.kind === 'file' ? { kind: 'file', path: withSuffix(target.path, '-tile') } : target) : undefined;
  const [, tilePaths] = await preflightOutputs([
    { target, count: 1, overwrite: settings.overwrite },
    ...(tileTarget ? [{ target: tileTarget, count, overwrite: settings.overwrite }] : []),
  ]);
  const tiles: GeneratedImage[] = [];
  const tileFiles: (string | undefined)[] = [];
  return {
    writerFor: (job) => async (images) => {
      const image = images[0]!;
      tiles[job] = image;
      if (!tileTarget) return;
      const planned = tilePaths ? { path: tilePaths[job]!, ifExists: settings.overwrite ? ('overwrite' as const) : ('error' as const) } : planOutputs(tileTarget, [nameVars(image, job, 0)], { overwrite: settings.overwrite })[0]!;
      tileFiles[job] = await writeEncoded(planned.path, planned.ifExists, image.image, metadataInfotext(image.metadata), settings);
      if (!options.json) process.stdout.write(`${tileFiles[job]}\n`);
    },
    finish: async () => {
      const first = tiles[0]!;
      const grid = xyzGrid(tiles.map((t): Raster => t.image), plan.counts, options.labels ? labelsOf(plan) : undefined);
      const planned = target.kind === 'file' ? { path: target.path, ifExists: settings.overwrite ? ('overwrite' as const) : ('error' as const) } : planOutputs(target, [nameVars(first, 0, 0)], { template: GRID_TEMPLATE, overwrite: settings.overwrite })[0]!;
      const path = await writeEncoded(planned.path, planned.ifExists, grid, gridInfotext(first, plan), settings);
      if (!options.json) {
        process.stdout.write(`${path}\n`);
        return;
      }
      const axes = plan.axes.map((a, i) => ({ axis: 'XYZ'[i], option: a.key, type: a.type, values: a.values }));
      const records = tiles.map((t, i) => ({ x: plan.tiles[i]!.x, y: plan.tiles[i]!.y, z: plan.tiles[i]!.z, ...(tileFiles[i] ? { path: tileFiles[i] } : {}), seed: t.seed, parameters: t.metadata }));
      process.stdout.write(`${JSON.stringify({ path, grid: { width: grid.width, height: grid.height, axes }, tiles: records })}\n`);
    },
  };
}

/** Each axis's labels, and one empty label where the plot has no such axis (A1111's "Nothing"). */
function labelsOf(plan: XyzPlan): { x: string[]; y: string[]; z: string[] } {
  const [x, y, z] = [0, 1, 2].map((i) => plan.axes[i]?.labels ?? ['']) as [string[], string[], string[]];
  return { x, y, z };
}

/** The first tile's infotext with A1111's Script, X Type, X Values, ... entries. */
function gridInfotext(first: GeneratedImage, plan: XyzPlan): string {
  const params = metadataParameters(first.metadata);
  params.extra = { ...params.extra, Script: 'X/Y/Z plot' };
  plan.axes.forEach((a, i) => {
    params.extra[`${'XYZ'[i]} Type`] = a.type;
    params.extra[`${'XYZ'[i]} Values`] = a.typed;
  });
  return formatInfotext(params);
}

async function writeEncoded(path: string, ifExists: 'overwrite' | 'error' | 'suffix', image: Raster, parameters: string, settings: Settings): Promise<string> {
  const bytes = await encodeImage(image, imageFormatOf(path) ?? 'png', { parameters, quality: settings.quality });
  return writeFileAtomic(path, bytes, { ifExists });
}

function withSuffix(path: string, suffix: string): string {
  const ext = extname(path);
  return `${path.slice(0, path.length - ext.length)}${suffix}${ext}`;
}
