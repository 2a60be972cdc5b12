import { createHash } from 'node:crypto';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gaussianBlurU8, gaussianKernelU8 } from '../src/image/cv-gaussian-u8.js';
import { nms } from '../src/image/preprocess/nms.js';
import { scribbleFromEdges } from '../src/image/preprocess/scribble-edges.js';
import type { Channels, Raster } from '../src/image/raster.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { seededPicture, type SeededKind } from './helpers/seeded-picture.js';

/**
 * scribble_hed / scribble_pidinet after the soft-edge map, against OpenCV 4.11 (tools/make_scribble_refs.py), byte for
 * byte by SHA-256: cv2.GaussianBlur of uint8 pictures (its fixed-point path) at sizes below the kernel's width, of 8k
 * samples a row and not, 1 and 3 channels, sigmas giving 3- to 31-tap kernels; annotator/util.py's nms at several
 * sizes, thresholds and sigmas; and the modules' whole post-processing on the random HED's and PiDiNet's softedge maps
 * (test/fixtures/hed, pidinet), as the extension's expressions make it.
 */
const DIR = join(FIXTURES, 'scribble');

/** 0/255 inputs: a seeded picture above the level -> 255 (tools/make_scribble_refs.py's LEVELS). */
const LEVELS = { sparse: ['noise', 240], blocks: ['cells', 127] } as const;
type InputKind = SeededKind | keyof typeof LEVELS;
interface Case {
  kind: InputKind;
  width: number;
  height: number;
  seed: number;
  input: string;
  sha256: string;
  ippOffDiffers: number;
  white: number;
}
interface Refs {
  blur: (Case & { channels: Channels; sigma: number })[];
  nms: (Case & { threshold: number; sigma: number })[];
  modules: { network: string; picture: string; module: string; edge: string; edgeSha256: string; scribble: string; sha256: string; ippOffDiffers: number; white: number }[];
}
const refs = readJson<Refs>(join(DIR, 'refs.json'));
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The tool's input: the seeded picture (or its noise through a LEVEL), its first channel when grey. */
function input(c: Case, channels: Channels): Raster {
  const [source, level] = c.kind === 'sparse' || c.kind === 'blocks' ? LEVELS[c.kind] : [c.kind, undefined];
  const picture = seededPicture(c.width, c.height, c.seed, source);
  const rgb = level === undefined ? picture.data : picture.data.map((v) => (v > level ? 255 : 0));
  const data = channels === 3 ? rgb : rgb.filter((_, i) => i % 3 === 0);
  assert.is(sha(data), c.input, 'the seeded input is the one the tool used');
  return { width: c.width, height: c.height, channels, data };
}

/** A grey PNG's samples (sharp hands them out as RGB: the first channel, checked equal to the others). */
async function grey(path: string): Promise<Raster> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  const samples = new Uint8Array(info.width * info.height);
  for (let p = 0; p < samples.length; p++) {
    samples[p] = data[p * info.channels]!;
    for (let c = 1; c < info.channels; c++) assert.is(data[p * info.channels + c], samples[p], `${path} is grey`);
  }
  return { width: info.width, height: info.height, channels: 1, data: samples };
}

test("the 8-bit kernels: cvRound(6σ + 1) | 1 taps of 8 fractional bits summing to 256, OpenCV's sizes", () => {
  for (const [sigma, size] of [[3, 19], [0.5, 5], [0.3, 3], [0.8, 7], [5, 31]] as const) {
    const k = gaussianKernelU8(sigma);
    assert.is(k.length, size, `sigma ${sigma}`);
    assert.is(k.reduce((a, b) => a + b, 0), 256);
    assert.equal([...k], [...k].reverse());
  }
});

for (const c of refs.blur) {
  test(`GaussianBlur uint8 ${c.kind} ${c.width}x${c.height}x${c.channels} sigma ${c.sigma}`, () => {
    const x = input(c, c.channels);
    assert.is(c.ippOffDiffers, 0, 'OpenCV with IPP off gives the same bytes');
    assert.is(sha(gaussianBlurU8(x, c.sigma).data), c.sha256);
  });
}

for (const c of refs.nms) {
  test(`nms ${c.kind} ${c.width}x${c.height} t=${c.threshold} s=${c.sigma}`, () => {
    const out = nms(input(c, 1), c.threshold, c.sigma);
    assert.is(c.ippOffDiffers, 0, 'OpenCV with IPP off gives the same bytes');
    assert.is(out.data.filter((v) => v === 255).length, c.white);
    assert.is(sha(out.data), c.sha256);
  });
}

for (const c of refs.modules) {
  test(`${c.module} on the random ${c.network}'s ${c.picture} softedge map: the extension's map, 0 samples differ`, async () => {
    const edge = await grey(join(FIXTURES, c.edge));
    assert.is(sha(edge.data), c.edgeSha256);
    const expected = await grey(join(DIR, c.scribble));
    const made = scribbleFromEdges(edge);
    assert.equal([made.width, made.height, made.channels], [edge.width, edge.height, 1]);
    const differ = made.data.filter((v, i) => v !== expected.data[i]).length;
    assert.is(differ, 0, `${differ} samples differ`);
    assert.is(sha(made.data), c.sha256);
    assert.ok(c.white > 0 && c.white < made.data.length, 'the map has lines and background');
  });
}

test('the cases reach kernels wider than the picture, both channel counts and the real thresholds', () => {
  assert.ok(refs.blur.some((c) => Math.min(c.width, c.height) < gaussianKernelU8(c.sigma).length));
  assert.ok(refs.blur.some((c) => c.channels === 3) && refs.blur.some((c) => c.width % 8 !== 0));
  assert.ok(refs.nms.some((c) => c.threshold === 127 && c.sigma === 3 && c.white > 0));
});

test.run();
