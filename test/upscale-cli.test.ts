import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../src/image/encode-png.js';
import { loadImage } from '../src/image/load-image.js';
import { pilResize } from '../src/image/pil-resample.js';
import { pngTextRecord, readPngText } from '../src/image/png-text.js';
import { loadUpscaler, upscaleOnce } from '../src/pipeline/upscale/index.js';
import { diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

/** `diffuse upscale` end to end: the PNG it writes, its metadata, A1111's final Lanczos when --scale differs. */
const DIR = join(FIXTURES, 'upscale');
const X4 = join(DIR, 'rrdb-x4.onnx');
const X2 = join(DIR, 'rrdb-x2.onnx');
const INPUT = join(DIR, 'images', 'tiled.png');
const out = tempDir('diffuse-upscale-');

const read = async (path: string) => (await loadImage(path, { alpha: 'drop' })).rgb;

test('writes the model pass, then Lanczos to int(side x scale // 8 x 8), with the postprocessing infotext', async () => {
  const path = join(out, 'x4.png');
  const r = diffuse(['upscale', INPUT, '--model', X4, '--tile', '24', '--tile-overlap', '8', '-q', '-o', path]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /45x37 -> 176x144 \(rrdb-x4, x4 model\)/);
  const u = await loadUpscaler(X4, { device: 'cpu', threads: 1 });
  try {
    const model = await upscaleOnce(u, await read(INPUT), { tile: 24, overlap: 8 });
    // A1111's Upscaler.upscale: 180x148 is not a multiple of 8, so it is resized to 176x144
    const expected = pilResize(model, 176, 144, 'lanczos');
    assert.equal((await read(path)).data, expected.data);
  } finally {
    await u.release();
  }
  const text = pngTextRecord(readPngText(readFileSync(path)));
  assert.is(text.postprocessing, 'Postprocess upscale by: 4, Postprocess upscaler: rrdb-x4');
  assert.is(text.extras, text.postprocessing);
});

test("--scale other than the model's: passes until large enough, then Lanczos (x2 model, --scale 3: two passes)", async () => {
  const path = join(out, 'x3.png');
  const r = diffuse(['upscale', INPUT, '--model', X2, '--scale', '3', '--tile', '0', '-q', '-o', path]);
  assert.is(r.status, 0, r.stderr);
  const u = await loadUpscaler(X2, { device: 'cpu', threads: 1 });
  try {
    const twice = await upscaleOnce(u, await upscaleOnce(u, await read(INPUT), { tile: 0 }), { tile: 0 });
    assert.equal([twice.width, twice.height], [180, 148]);
    assert.equal((await read(path)).data, pilResize(twice, 128, 104, 'lanczos').data);
  } finally {
    await u.release();
  }
  assert.match(pngTextRecord(readPngText(readFileSync(path))).postprocessing!, /^Postprocess upscale by: 3, /);
});

test("keeps the input's A1111 parameters; refuses to replace a file without --overwrite, leaving it whole", async () => {
  const src = await read(INPUT);
  const input = join(out, 'with-params.png');
  const params = 'a lighthouse\nSteps: 20, Sampler: Euler a, Seed: 1, Size: 45x37';
  writeFileSync(input, await encodePng(src, [{ keyword: 'parameters', text: params }]));
  const path = join(out, 'kept.png');
  assert.is(diffuse(['upscale', input, '--model', X4, '--tile', '0', '-q', '-o', path]).status, 0);
  const text = pngTextRecord(readPngText(readFileSync(path)));
  assert.is(text.parameters, params);
  assert.match(text.postprocessing!, /Postprocess upscaler: rrdb-x4/);
  const before = readFileSync(path);
  const again = diffuse(['upscale', input, '--model', X4, '-q', '-o', path]);
  assert.is(again.status, 2);
  assert.match(again.stderr, /exists; pass --overwrite/);
  assert.equal(readFileSync(path), before);
});

test.run();
