import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ellipse2Poly, fillCircle, fillConvexPoly, thickLine } from '../src/image/cv-draw.js';
import { gaussianBlurU8 } from '../src/image/cv-gaussian-u8.js';
import { cvResizeAreaFloat } from '../src/image/cv-resize-area.js';
import { cvResizeLanczos4 } from '../src/image/cv-resize-lanczos.js';
import { createRaster } from '../src/image/raster.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { seededPicture, type SeededKind } from './helpers/seeded-picture.js';

/**
 * The OpenCV ports OpenPose's preprocessor runs (tools/make_cv_pose_ops_refs.py, OpenCV 4.11's default dispatch), byte
 * for byte by SHA-256: cv2.resize INTER_LANCZOS4 of 3-channel uint8 pictures and float32 planes (up, down, rows of 4k
 * samples and not), INTER_AREA of float32 planes (general, whole factors, halving with a row tail), and 30 limbs and
 * joints drawn with ellipse2Poly + fillConvexPoly + circle, across and off the canvas' edges; 40 segments drawn by cv2.line
 * at thickness 2 and 3 (the hands' edges), some leaving the canvas, some a single point; GaussianBlur of 8-bit pictures
 * at sigma 0.8 (the hand detector's).
 */
interface Resize {
  kind: SeededKind;
  width: number;
  height: number;
  seed: number;
  outWidth: number;
  outHeight: number;
  samples: 'u8' | 'f32';
  interpolation: 'lanczos' | 'area';
  input: string;
  sha256: string;
}
interface Draw {
  width: number;
  height: number;
  center: [number, number];
  axes: [number, number];
  angle: number;
  joint: [number, number];
  polygon: string;
  canvas: string;
}

interface Line {
  width: number;
  height: number;
  from: [number, number];
  to: [number, number];
  thickness: number;
  canvas: string;
}
interface Blur {
  kind: SeededKind;
  width: number;
  height: number;
  seed: number;
  input: string;
  sha256: string;
}

const refs = readJson<{ resizes: Resize[]; draws: Draw[]; lines: Line[]; blurs: Blur[] }>(join(FIXTURES, 'cv-pose-ops/refs.json'));
const sha = (a: ArrayBufferView) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

for (const c of refs.resizes) {
  test(`${c.interpolation} ${c.samples} ${c.kind} ${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}`, () => {
    const picture = seededPicture(c.width, c.height, c.seed, c.kind);
    const plane = Float32Array.from({ length: c.width * c.height }, (_, i) => picture.data[i * 3]! / 256 - 0.5);
    assert.is(sha(c.samples === 'u8' ? picture.data : plane), c.input, 'the input the tool resized');
    let out: Uint8Array | Float32Array;
    if (c.interpolation === 'area') out = cvResizeAreaFloat(plane, c.width, c.height, c.outWidth, c.outHeight);
    else if (c.samples === 'u8') out = cvResizeLanczos4(picture, c.outWidth, c.outHeight).data;
    else out = cvResizeLanczos4({ data: plane, width: c.width, height: c.height, channels: 1 }, c.outWidth, c.outHeight).data;
    assert.is(out.length, c.outWidth * c.outHeight * (c.samples === 'u8' ? 3 : 1));
    assert.is(sha(out), c.sha256);
  });
}

test(`${refs.draws.length} limbs and joints: ellipse2Poly's points and the filled canvas`, () => {
  for (const c of refs.draws) {
    const polygon = ellipse2Poly({ x: c.center[0], y: c.center[1] }, { width: c.axes[0], height: c.axes[1] }, c.angle, 0, 360, 1);
    assert.is(sha(Int32Array.from(polygon.flatMap((p) => [p.x, p.y]))), c.polygon, JSON.stringify(c));
    const canvas = createRaster(c.width, c.height, 3);
    fillConvexPoly(canvas, polygon, [153, 51, 0]);
    fillCircle(canvas, { x: c.joint[0], y: c.joint[1] }, 4, [255, 0, 85]);
    assert.is(sha(canvas.data), c.canvas, JSON.stringify(c));
  }
});

test(`${refs.lines.length} thick segments: the canvas cv2.line draws`, () => {
  let drawn = 0;
  for (const c of refs.lines) {
    const canvas = createRaster(c.width, c.height, 3);
    thickLine(canvas, { x: c.from[0], y: c.from[1] }, { x: c.to[0], y: c.to[1] }, [255, 153, 0], c.thickness);
    assert.is(sha(canvas.data), c.canvas, JSON.stringify(c));
    if (canvas.data.some((v) => v !== 0)) drawn++;
  }
  assert.ok(drawn > refs.lines.length / 2, `${drawn} canvases have a mark`);
});

for (const c of refs.blurs) {
  test(`GaussianBlur sigma 0.8 of an 8-bit ${c.kind} ${c.width}x${c.height}`, () => {
    const picture = seededPicture(c.width, c.height, c.seed, c.kind);
    assert.is(sha(picture.data), c.input, 'the input the tool blurred');
    assert.is(sha(gaussianBlurU8(picture, 0.8).data), c.sha256);
  });
}

test('the area port refuses enlarging; same size is a copy', () => {
  const plane = new Float32Array(12).map((_, i) => i);
  assert.throws(() => cvResizeAreaFloat(plane, 4, 3, 8, 3), /enlarges/);
  const copy = cvResizeAreaFloat(plane, 4, 3, 4, 3);
  assert.equal(copy, plane);
  assert.is.not(copy, plane);
});

test.run();
