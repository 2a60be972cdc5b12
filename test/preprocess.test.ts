import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canny } from '../src/image/preprocess/canny.js';
import { rgbToGray } from '../src/image/preprocess/gray.js';
import { invert } from '../src/image/preprocess/invert.js';
import { threshold } from '../src/image/preprocess/threshold.js';
import type { Channels, Raster } from '../src/image/raster.js';
import { everyColour } from './helpers/every-colour.js';

// References from tools/make_preprocess_refs.py: OpenCV 4.11's cv2.Canny (aperture 3, L1 and L2 gradients;
// identical with several threads, one thread and IPP off) on RGB and grey images, 18 threshold settings on a
// 97x83 scene and 4 on tiny images; cv2.cvtColor RGB2GRAY over all 2^24 colours; sd-webui-controlnet's
// threshold and invert. Tolerance: none (bit exact).
const fixture = (name: string): Buffer => readFileSync(new URL(`../../test/fixtures/preprocess/${name}`, import.meta.url));
const refs = JSON.parse(fixture('refs.json').toString('utf8')) as {
  images: Record<string, { width: number; height: number; channels: Channels; offset: number }>;
  canny: { image: string; low: number; high: number; l2: boolean; edgePixels: number; offset: number }[];
  threshold: { image: string; cases: { threshold: number; offset: number }[] };
  invert: { image: string; offset: number };
  gray: { rgb2gray: string };
};
const arrays = gunzipSync(fixture('arrays.bin.gz'));

function image(name: string): Raster {
  const { width, height, channels, offset } = refs.images[name]!;
  return { width, height, channels, data: new Uint8Array(arrays.subarray(offset, offset + width * height * channels)) };
}
const expected = (offset: number, length: number): Uint8Array => arrays.subarray(offset, offset + length);

function mismatches(actual: Raster, want: Uint8Array): string | undefined {
  if (actual.data.length !== want.length) return `length ${actual.data.length} vs ${want.length}`;
  const bad: number[] = [];
  actual.data.forEach((v, i) => v !== want[i] && bad.push(i));
  if (bad.length === 0) return undefined;
  const at = (i: number) => `(${(i / actual.channels) % actual.width | 0}, ${Math.floor(i / actual.channels / actual.width)})`;
  return `${bad.length} samples differ, first at ${bad.slice(0, 5).map(at).join(' ')}`;
}

test('cv2.Canny bit for bit: RGB and grey, L1 and L2, threshold edge cases, tiny images', () => {
  for (const c of refs.canny) {
    const img = image(c.image);
    const edges = canny(img, c.low, c.high, { l2Gradient: c.l2 });
    assert.equal([edges.width, edges.height, edges.channels], [img.width, img.height, 1]);
    assert.is(mismatches(edges, expected(c.offset, img.width * img.height)), undefined, `${c.image} ${c.low}/${c.high}${c.l2 ? ' L2' : ''}`);
  }
  // the references are not all empty or all full: thresholds change what is found
  const counts = new Set(refs.canny.filter((c) => c.image === 'scene').map((c) => c.edgePixels));
  assert.ok(counts.size > 8, [...counts].join(' '));
});

test('Canny on the grey conversion equals OpenCV on its own conversion', () => {
  const grey = rgbToGray(image('scene'));
  assert.equal(grey.data, image('scene-gray').data);
  const ref = refs.canny.find((c) => c.image === 'scene-gray' && c.low === 100 && c.high === 200 && !c.l2)!;
  assert.is(mismatches(canny(grey, 100, 200), expected(ref.offset, grey.width * grey.height)), undefined);
});

test("OpenCV's RGB2GRAY on all 2^24 colours", () => {
  const grey = rgbToGray(everyColour());
  assert.is(createHash('sha256').update(grey.data).digest('hex'), refs.gray.rgb2gray);
});

test("sd-webui-controlnet's threshold and invert", () => {
  const img = image(refs.threshold.image);
  for (const c of refs.threshold.cases) assert.is(mismatches(threshold(img, c.threshold), expected(c.offset, img.data.length)), undefined, `threshold ${c.threshold}`);
  assert.is(mismatches(invert(image(refs.invert.image)), expected(refs.invert.offset, img.data.length)), undefined);
});

test('unsupported inputs are refused', () => {
  const rgba: Raster = { width: 2, height: 2, channels: 4, data: new Uint8Array(16) };
  assert.throws(() => canny(rgba, 1, 2), /grey or RGB/);
  assert.throws(() => canny(image('tiny-3x3'), 0, 2 ** 31), /int range/);
  assert.throws(() => canny(image('tiny-3x3'), Number.NaN, 1), /int range/);
  assert.throws(() => threshold(rgba), /grey or RGB/);
});

test.run();
