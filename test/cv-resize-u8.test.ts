import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cvResizeU8, type CvInterpolation } from '../src/image/cv-resize-u8.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { seededPicture, type SeededKind } from './helpers/seeded-picture.js';

/**
 * cv2.resize of 3-channel uint8 pictures (tools/make_cv_resize_u8_refs.py, OpenCV 4.11) byte for byte, by SHA-256:
 * INTER_AREA down by integer factors (its fast path, 2x's own rounding included) and by others (its general path,
 * unequal factors, 513 -> 512), INTER_CUBIC up and down (rows of 8k samples and not, for its SSE and integer
 * tails). INTER_AREA against OpenCV's default dispatch (its IPP HAL leaves 8-bit area to OpenCV); INTER_CUBIC
 * against OpenCV's own code (IPP off), which the default dispatch replaces by IPP's ippiResizeCubic.
 */
interface Case {
  kind: SeededKind;
  width: number;
  height: number;
  seed: number;
  outWidth: number;
  outHeight: number;
  interpolation: CvInterpolation;
  input: string;
  sha256: string;
  sha256IppOff: string;
  ippOffDiffers: number;
}

const { cases } = readJson<{ cases: Case[] }>(join(FIXTURES, 'cv-resize-u8/refs.json'));
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

for (const c of cases) {
  const name = `${c.interpolation} ${c.kind} ${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}`;
  test(name, () => {
    const picture = seededPicture(c.width, c.height, c.seed, c.kind);
    assert.is(sha(picture.data), c.input, 'the seeded picture is the one the tool resized');
    const out = cvResizeU8(picture, c.outWidth, c.outHeight, c.interpolation);
    assert.equal([out.width, out.height, out.channels], [c.outWidth, c.outHeight, 3]);
    assert.is(sha(out.data), c.sha256IppOff, 'OpenCV own code');
    if (c.interpolation === 'area') assert.is(c.ippOffDiffers, 0, 'the default dispatch gives the same bytes for INTER_AREA');
  });
}

test('the cases cover both area paths and cubic up and down', () => {
  const area = cases.filter((c) => c.interpolation === 'area');
  const integer = (c: Case) => c.width % c.outWidth === 0 && c.height % c.outHeight === 0;
  assert.ok(area.some(integer) && area.some((c) => !integer(c)));
  const cubic = cases.filter((c) => c.interpolation === 'cubic');
  assert.ok(cubic.some((c) => c.outWidth > c.width) && cubic.some((c) => c.outWidth < c.width));
});

test('same size is a copy; INTER_AREA upscaling is refused', () => {
  const picture = seededPicture(9, 7, 3, 'noise');
  const copy = cvResizeU8(picture, 9, 7, 'cubic');
  assert.equal(copy.data, picture.data);
  assert.is.not(copy.data, picture.data);
  assert.throws(() => cvResizeU8(picture, 18, 14, 'area'), /upscaling/);
});

test.run();
