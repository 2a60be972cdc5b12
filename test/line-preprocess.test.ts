import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cannyControlMap } from '../src/image/preprocess/canny.js';
import { gaussianKernel } from '../src/image/preprocess/cv-gaussian.js';
import { lineartStandard } from '../src/image/preprocess/lineart-standard.js';
import { scribbleXdog } from '../src/image/preprocess/scribble.js';
import type { Raster } from '../src/image/raster.js';
import { FIXTURES } from './helpers/fixtures.js';

/**
 * sd-webui-controlnet's network-free line preprocessors against its own numpy/cv2 expressions
 * (tools/make_line_preprocess_refs.py, OpenCV 4.11): scribble_xdog (thresholds 32 and 12) and
 * lineart_standard on a photo-like scene (45x70, 64x64) and a line drawing (70x45), each edge-padded to
 * multiples of 64 as resize_image_with_pad leaves it. Pixel for pixel: the outputs are thresholds and 8-bit
 * truncations of float32 blurs, which move only at exact ties.
 */
const DIR = join(FIXTURES, 'preprocess-lines');

interface Case {
  picture: string;
  module: 'scribble_xdog' | 'lineart_standard' | 'canny';
  args: { threshold?: number; low?: number; high?: number };
  output: string;
  white_or_nonzero_pixels: number;
}

async function raster(file: string): Promise<Raster> {
  const { data, info } = await sharp(join(DIR, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 && info.channels !== 3) throw new Error(`${file}: ${info.channels} channels`);
  return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data) };
}

const cases = (JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as { cases: Case[] }).cases;

test('the kernels OpenCV uses for float images: size cvRound(8σ + 1) | 1, symmetric, summing to 1', () => {
  for (const [sigma, size] of [[0.5, 5], [5, 41], [6, 49]] as const) {
    const k = gaussianKernel(sigma);
    assert.is(k.length, size);
    for (let i = 0; i < size; i++) assert.is(k[i], k[size - 1 - i]);
    assert.ok(Math.abs(k.reduce((a, b) => a + b, 0) - 1) < 1e-6);
  }
});

for (const c of cases) {
  test(`${c.output}: equals sd-webui-controlnet's ${c.module} pixel for pixel`, async () => {
    const picture = await raster(c.picture);
    const expected = await raster(c.output);
    const run = { scribble_xdog: () => scribbleXdog(picture, c.args.threshold), lineart_standard: () => lineartStandard(picture), canny: () => cannyControlMap(picture, c.args.low!, c.args.high!) }[c.module];
    const got = run();
    assert.is(got.width, expected.width);
    assert.is(got.height, expected.height);
    // A grey map (canny's) may come back from the PNG as three equal channels.
    const want = got.channels === expected.channels ? expected.data : expected.data.filter((_, i) => i % expected.channels === 0);
    assert.is(want.length, got.data.length);
    let differing = 0;
    for (let i = 0; i < got.data.length; i++) if (got.data[i] !== want[i]) differing++;
    assert.is(differing, 0, `${differing} values differ`);
    assert.ok(c.white_or_nonzero_pixels > 0, 'the reference draws something');
  });
}

test.run();
