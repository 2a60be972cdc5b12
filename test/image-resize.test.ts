import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type Box, type PilFilter, pilResize } from '../src/image/pil-resample.js';
import type { Channels, Raster } from '../src/image/raster.js';
import { type ResizeMode, fitToSize } from '../src/image/resize-modes.js';

// References from tools/make_image_refs.py: diffusers VaeImageProcessor.resize (default / crop / fill, the
// same PIL LANCZOS calls as A1111's resize_image modes 0 / 1 / 2) and PIL Image.resize with a box, on a
// 48x32 image with gradients, hard edges, a saturated stripe and noise. Tolerance: none (bit exact).
const fixture = (name: string): Buffer => readFileSync(new URL(`../../test/fixtures/image/${name}`, import.meta.url));
const refs = JSON.parse(fixture('refs.json').toString('utf8')) as {
  decode: { files: { file: string; width: number; height: number; rgb: string }[] };
  resize: {
    cases: { mode: 'default' | 'crop' | 'fill'; width: number; height: number; channels: 1 | 3; output: string }[];
    boxCases: { filter: PilFilter; width: number; height: number; box: number[]; output: string }[];
  };
};

const srcRef = refs.decode.files.find((f) => f.file === 'src.png')!;
const src: Raster = { width: srcRef.width, height: srcRef.height, channels: 3, data: new Uint8Array(fixture(srcRef.rgb)) };
const green: Raster = { width: src.width, height: src.height, channels: 1, data: src.data.filter((_, i) => i % 3 === 1) };

const MODES: Record<string, ResizeMode> = { default: 'just-resize', crop: 'crop-and-resize', fill: 'resize-and-fill' };

function firstMismatch(actual: Raster, expected: Uint8Array, w: number, h: number, channels: Channels): string | undefined {
  if (actual.width !== w || actual.height !== h || actual.channels !== channels) return `shape ${actual.width}x${actual.height}x${actual.channels}`;
  const i = actual.data.findIndex((v, k) => v !== expected[k]);
  return i < 0 ? undefined : `sample ${i}: ${actual.data[i]} != ${expected[i]}`;
}

test('A1111 / diffusers resize modes, RGB and single-channel, bit exact', () => {
  for (const c of refs.resize.cases) {
    const input = c.channels === 1 ? green : src;
    const out = fitToSize(input, c.width, c.height, MODES[c.mode]!);
    assert.is(firstMismatch(out, fixture(c.output), c.width, c.height, c.channels), undefined, `${c.mode} ${c.width}x${c.height}x${c.channels}`);
  }
});

test('PIL resize, LANCZOS and BICUBIC, with a box (fractional, zero-height/width), bit exact', () => {
  for (const c of refs.resize.boxCases) {
    const out = pilResize(src, c.width, c.height, c.filter, c.box as unknown as Box);
    assert.is(firstMismatch(out, fixture(c.output), c.width, c.height, 3), undefined, `${c.filter} ${JSON.stringify(c.box)}`);
  }
});

test('same size is a copy; invalid sizes and boxes throw', () => {
  const copy = pilResize(src, src.width, src.height);
  assert.equal(copy.data, src.data);
  assert.is.not(copy.data, src.data);
  assert.throws(() => pilResize(src, 0, 5), RangeError);
  assert.throws(() => pilResize(src, 5, 5, 'lanczos', [0, 0, src.width + 1, src.height]), RangeError);
  assert.throws(() => pilResize(src, 5, 5, 'lanczos', [4, 0, 3, 2]), RangeError);
});

test.run();
