import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRaster } from '../src/image/raster.js';
import { drawFacePose, drawHandPose, type PoseKeypoint } from '../src/image/preprocess/openpose-hand-face-draw.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

/**
 * OpenPose's hands and faces against controlnet_aux 0.0.10 (tools/make_openpose_hands_refs.py): util.draw_handpose and
 * util.draw_facepose on keypoints made as detect_hands / detect_face make them, byte for byte.
 */
interface Draw {
  width: number;
  height: number;
  /** Per hand: the pixels' x row and y row (-1: not found). */
  hands: [number[], number[]][];
  face: [number[], number[]];
  canvas: string;
}

const DIR = join(FIXTURES, 'openpose-hands');
const refs = readJson<{ draws: Draw[] }>(join(DIR, 'cases.json'));
const sha = (a: ArrayBufferView) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

/** detect_hands' float32 fractions: np.float32 pixels / float(side). */
const fractions = ([xs, ys]: [number[], number[]], width: number, height: number): PoseKeypoint[] => xs.map((x, i) => ({ x: Math.fround(x / width), y: Math.fround(ys[i]! / height) }));

test(`${refs.draws.length} canvases of two hands and a face = draw_handpose + draw_facepose`, () => {
  let marked = 0;
  for (const c of refs.draws) {
    const canvas = createRaster(c.width, c.height, 3);
    for (const hand of c.hands) drawHandPose(canvas, fractions(hand, c.width, c.height));
    drawFacePose(canvas, fractions(c.face, c.width, c.height));
    assert.is(sha(canvas.data), c.canvas, `${c.width}x${c.height}`);
    if (canvas.data.some((v) => v !== 0)) marked++;
  }
  assert.is(marked, refs.draws.length);
});

test('no keypoints draw nothing', () => {
  const canvas = createRaster(32, 32, 3);
  drawHandPose(canvas, undefined);
  drawHandPose(canvas, []);
  drawFacePose(canvas, undefined);
  assert.ok(canvas.data.every((v) => v === 0));
});

test.run();
