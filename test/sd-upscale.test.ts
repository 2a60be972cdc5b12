import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import type { Raster } from '../src/image/raster.js';
import { combineGrid, cropTile, splitGrid } from '../src/image/tile-grid.js';
import { upscalerResize } from '../src/image/upscaler-resize.js';
import { generate } from '../src/pipeline/generate.js';
import { loadUpscaler, upscaleRaster } from '../src/pipeline/upscale/index.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/**
 * img2img's SD upscale on tiny-sd: the 45x37 picture by 2 (A1111's 88x72), 32x32 tiles with overlap 8.
 * The tile positions are A1111's split_grid's (tools/make_upscale_fixture.py runs it for this size), each tile
 * is the img2img image its own request with seed + index makes, and the blend is combine_grid's (byte for byte
 * against A1111's code in test/upscale.test.ts).
 */
const DIR = join(FIXTURES, 'upscale');
const s = suite('SD upscale');
const model = withModel(s, TINY_SD, { withEncoder: true });
const grids = readJson<{ grids: { name: string; positions: [number, number][] }[] }>(join(DIR, 'cases.json')).grids;
const picture = async (): Promise<Raster> => (await loadImage(join(DIR, 'images', 'tiled.png'))).rgb;

const request = (init: Raster) =>
  tinyRequest({ prompt: 'a lighthouse', steps: 4, seed: 7, init: { image: init, strength: 0.6, latents: 'sample' }, sdUpscale: { scale: 2, overlap: 8, upscaler: { kind: 'lanczos' } } });

s('tiles where A1111 cuts them, each painted with seed + index, blended by combine_grid', async () => {
  const bundle = model();
  const init = await picture();
  const result = await generate(bundle, request(init));
  const image = result.images[0]!.image;
  assert.equal([image.width, image.height], [88, 72]);

  const upscaled = upscalerResize(init, 88, 72, 'lanczos');
  const grid = splitGrid(88, 72, 32, 32, 8);
  const positions = grid.rows.flatMap((y) => grid.cols.map((x): [number, number] => [x, y]));
  assert.equal(positions, grids.find((g) => g.name === 'sd-upscale')!.positions, "A1111's split_grid");
  let index = 0;
  const alone = await combineGrid(grid, async (r, c) => {
    const tile = cropTile(upscaled, grid.cols[c]!, grid.rows[r]!, 32, 32);
    const one = await generate(bundle, tinyRequest({ prompt: 'a lighthouse', steps: 4, seed: 7 + index++, init: { image: tile, strength: 0.6, latents: 'sample' } }));
    return one.images[0]!.image;
  });
  assert.is(index, 12);
  assert.equal(image.data, alone.data);
  const meta = result.images[0]!.metadata;
  assert.equal([meta.width, meta.height, meta.seed, meta.sdUpscale], [32, 32, 7, { overlap: 8, upscaler: 'Lanczos' }]);
});

s('an upscaler model opened with the model (LoadOptions.upscaler) enlarges the picture first', async () => {
  const bundle = model();
  const u = await loadUpscaler(join(DIR, 'rrdb-x4.onnx'), { device: 'cpu' });
  try {
    const init = await picture();
    const withModelUpscaler = await generate({ ...bundle, upscaler: u }, { ...request(init), sdUpscale: { scale: 2, overlap: 8, upscaler: { kind: 'model', name: 'rrdb-x4' } } });
    // the same picture tiled with 'none' after the model's enlargement gives the same image
    const enlarged = await upscaleRaster(u, init, { width: 88, height: 72 });
    const none = await generate(bundle, { ...request(enlarged), sdUpscale: { scale: 2, overlap: 8, upscaler: { kind: 'none' } } });
    assert.equal(withModelUpscaler.images[0]!.image.data, none.images[0]!.image.data);
    assert.is(withModelUpscaler.images[0]!.metadata.sdUpscale?.upscaler, 'rrdb-x4');
  } finally {
    await u.release();
  }
});

s('CLI: img2img --sd-upscale writes the blended picture with A1111\'s SD upscale entries; bad values exit 2 in one line', async () => {
  const out = tempDir('diffuse-sdup-');
  const path = join(out, 'up.png');
  const args = ['img2img', 'a lighthouse', '-i', join(DIR, 'images', 'tiled.png'), '--model', TINY_SD, '--steps', '2', '--seed', '3', '-q', '--width', '32', '--height', '32'];
  const r = diffuse([...args, '--sd-upscale', '2', '--sd-upscale-overlap', '8', '--sd-upscale-upscaler', join(DIR, 'rrdb-x4.onnx'), '-o', path]);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(path));
  assert.ok(meta.kind === 'a1111');
  assert.equal([meta.parameters.extra['SD upscale overlap'], meta.parameters.extra['SD upscale upscaler'], meta.parameters.width], ['8', 'rrdb-x4', 32]);
  const written = await loadImage(path);
  assert.equal([written.rgb.width, written.rgb.height], [88, 72]);
  for (const [more, says] of [
    [['--sd-upscale', '2', '--sd-upscale-overlap', '16'], /overlap must be a whole number below half the 32x32 tile/],
    [['--sd-upscale', '1', '--sd-upscale-overlap', '8', '--width', '64', '--height', '64'], /the upscaled picture is 40x32, smaller than the 64x64 tiles/],
    [['--sd-upscale', '2', '--sd-upscale-overlap', '8', '--batch-size', '2'], /use --batch-count, not --batch-size/],
    [['--sd-upscale', '2', '--sd-upscale-overlap', '8', '--sd-upscale-upscaler', 'esrgan-9000'], /--sd-upscale-upscaler esrgan-9000: not an upscaler of the registry/],
    [['--sd-upscale', '0.5'], /--sd-upscale must be a number from 1 to 8/],
  ] as const) {
    const bad = diffuse([...args, ...more, '-o', join(out, 'bad.png')]);
    assert.is(bad.status, 2, `${more.join(' ')}: ${bad.stderr}`);
    assert.match(bad.stderr, says);
    assert.is(bad.stderr.trim().split('\n').length, 1);
  }
});

s.run();
