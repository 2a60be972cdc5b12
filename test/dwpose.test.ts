import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DiffuseError } from '../src/errors.js';
import { encodePng } from '../src/image/encode-png.js';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { padEdgeTo64 } from '../src/image/pad-edge.js';
import { DETECTOR_COLUMNS, DETECTOR_ROWS, detectorInput, detectPeople, MAX_PEOPLE, type Box } from '../src/image/preprocess/dwpose-detect.js';
import { decodeSimcc, openposeOrder, poseInput } from '../src/image/preprocess/dwpose-pose.js';
import { cvResizeLinearU8 } from '../src/image/cv-resize-linear-u8.js';
import { getAffineTransform, warpAffineLinear, type Affine, type Point2 } from '../src/image/cv-warp-affine.js';
import { createRaster, type Raster } from '../src/image/raster.js';
import { floatTensor, toFloat32 } from '../src/onnx/dtype.js';
import { openSession } from '../src/onnx/session.js';
import { checkDetectorPictureSize, dwposeControlPicture } from '../src/pipeline/detector-control.js';
import { assembleModel } from './helpers/assemble-model.js';
import { diffuse } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { scratch } from './helpers/scratch.js';
import { seededPicture, type SeededKind } from './helpers/seeded-picture.js';

/**
 * DWPose (--control type=dwpose) against sd-webui-controlnet's dw_openpose_full (tools/make_dwpose_refs.py: its
 * cv_ox_det / cv_ox_pose / drawing, as the PyPI package dwpose 1.0.1 carries them, with onnxruntime sessions) on tiny
 * stand-ins of yolox_l.onnx and dw-ll_ucoco_384.onnx whose outputs are exact arithmetic (the same in Python's and
 * Node's onnxruntime): the detector's input bit for bit (cv2.resize INTER_LINEAR), the boxes, the pose network's input
 * bit for bit (getAffineTransform, warpAffine), every keypoint (their float64 bytes) and the map.
 */

const DIR = join(FIXTURES, 'dwpose');
const MODELS = { detector: join(DIR, 'detector.onnx'), pose: join(DIR, 'pose.onnx') };

interface Case {
  name: string;
  width: number;
  height: number;
  rects: number[][];
  detectorInput: string;
  boxes: number[][] | null;
  poseInput: string[];
  keypoints: string | null;
  people: number;
  map: string;
  drawn: number;
}

const cases = readJson<{ cases: Case[] }>(join(DIR, 'cases.json')).cases;

/** make_dwpose_refs.picture: a gradient with filled rectangles, each with an aperiodic ripple. */
function pictureOf({ width, height, rects }: Case): Raster {
  const out = createRaster(width, height, 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let rgb = [Math.floor((128 * x) / Math.max(width - 1, 1)), Math.floor((255 * y) / Math.max(height - 1, 1)), (x + 2 * y) % 256];
      for (const [x0, y0, x1, y1, r, g, b] of rects) {
        if (x >= x0! && x < x1! && y >= y0! && y < y1!) {
          const ripple = (x * x + 3 * y * y + x * y) % 23;
          rgb = [r! + ripple, g! + ripple, b! + ripple];
        }
      }
      out.data.set(rgb.map((v) => Math.min(255, v)), (y * width + x) * 3);
    }
  }
  return out;
}

const sha = (data: ArrayBufferView): string => createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex');

async function run(path: string, input: Float32Array, dims: number[]): Promise<Float32Array[]> {
  const opened = await openSession(path, { device: 'cpu' });
  try {
    const out = await opened.session.run({ input: floatTensor('float32', input, dims) });
    return opened.session.outputNames.map((name) => toFloat32(out[name]!));
  } finally {
    await opened.session.release();
  }
}

const test = suite('dwpose');
const tmp = scratch(test);

for (const c of cases) {
  test(`${c.name}: the detector's input, boxes, the pose network's input and every keypoint as sd-webui-controlnet computes them`, async () => {
    const padded = padEdgeTo64(pictureOf(c));
    const det = detectorInput(padded);
    assert.is(sha(det.image), c.detectorInput, 'the letterboxed picture, bit for bit');
    const [rows] = await run(MODELS.detector, det.image, [1, 3, 640, 640]);
    const boxes = detectPeople(rows!, det.ratio);
    assert.is(boxes === undefined, c.boxes === null, 'found something');
    if (!boxes || !c.boxes) return;
    assert.equal(boxes, c.boxes.map((b) => b as Box), 'the person boxes, bit for bit');
    const input = poseInput(padded, boxes);
    assert.is(sha(input.image), c.poseInput[0], "the pose network's crops, bit for bit");
    const people = input.crops.length;
    const [x, y] = await run(MODELS.pose, input.image, [people, 3, 384, 288]);
    const keypoints = decodeSimcc(x!, y!, input.crops).map(openposeOrder);
    const flat = Float64Array.from(keypoints.flatMap((person) => person.flatMap((k) => [k.x, k.y, k.score])));
    assert.is(sha(flat), c.keypoints, 'every keypoint (x, y, score), bit for bit');
  });

  test(`${c.name}: the map of dw_openpose_full`, async () => {
    const map = await dwposeControlPicture(MODELS, pictureOf(c), { device: 'cpu' });
    let drawn = 0;
    for (let i = 0; i < map.width * map.height; i++) if (map.data[i * 3] || map.data[i * 3 + 1] || map.data[i * 3 + 2]) drawn++;
    assert.is(drawn, c.drawn, 'pixels drawn');
    assert.is(sha(map.data), c.map, 'the map, bit for bit');
  });
}

interface CvOps {
  picture: [number, number, number, SeededKind];
  resizes: Array<{ picture: [number, number, number, SeededKind]; size: [number, number]; sha256: string }>;
  warps: Array<{ src: number[][]; matrix: number[][]; sha256: string }>;
}
const cvOps = readJson<CvOps>(join(DIR, 'cv-ops.json'));

test(`cv2.resize INTER_LINEAR: ${cvOps.resizes.length} seeded pictures up, down, to widths 1..8 and at half size, bit for bit`, () => {
  for (const { picture: [w, h, seed, kind], size: [tw, th], sha256 } of cvOps.resizes) {
    assert.is(sha(cvResizeLinearU8(seededPicture(w, h, seed, kind), tw, th).data), sha256, `${w}x${h} to ${tw}x${th}`);
  }
});

test(`cv2.getAffineTransform + cv2.warpAffine INTER_LINEAR: ${cvOps.warps.length} point triples (crops, rotations, boxes past the edges): warps bit for bit, matrices to the last bits`, () => {
  const [w, h, seed, kind] = cvOps.picture;
  const picture = seededPicture(w, h, seed, kind);
  const dst: Point2[] = [{ x: 144, y: 192 }, { x: 144, y: 48 }, { x: 0, y: 48 }];
  let sameMatrices = 0;
  for (const { src, matrix, sha256 } of cvOps.warps) {
    const m = getAffineTransform(src.map(([x, y]) => ({ x: x!, y: y! })), dst)!;
    const expected = matrix.flat();
    // opencv-python solves through OpenBLAS's dgesv, whose kernels' summation orders are not followed (see cv-warp-affine.ts).
    m.forEach((v, i) => assert.ok(Math.abs(v - expected[i]!) <= 1e-14 * Math.max(1, Math.abs(expected[i]!)), `the matrix of ${JSON.stringify(src)}: ${v} vs ${expected[i]}`));
    if (m.every((v, i) => v === expected[i])) sameMatrices++;
    assert.is(sha(warpAffineLinear(picture, matrix.flat() as Affine, 288, 384).data), sha256, `the warp of ${JSON.stringify(src)} by OpenCV's matrix`);
    assert.is(sha(warpAffineLinear(picture, m, 288, 384).data), sha256, `the warp of ${JSON.stringify(src)} by diffuse's matrix`);
  }
  assert.ok(sameMatrices >= cvOps.warps.length / 2, `${sameMatrices} of ${cvOps.warps.length} matrices equal to the bit`);
});

test('the people case draws bodies, hands and faces (the cases cover each part)', () => {
  const people = cases.find((c) => c.name === 'people')!;
  assert.ok(people.people >= 3, `${people.people} people`);
  assert.equal(cases.map((c) => c.boxes === null ? 'none' : c.boxes.length === 0 ? 'whole picture' : 'boxes').sort(), ['boxes', 'boxes', 'none', 'whole picture']);
});

/** Detector rows with a person of score `score` (objectness x class 0) in each of the first `people` stride-32 cells (64 px apart, boxes 32 px: no overlap). */
function rowsWithPeople(people: number, score: number): Float32Array {
  const rows = new Float32Array(DETECTOR_ROWS * DETECTOR_COLUMNS);
  const first = 80 * 80 + 40 * 40;
  for (let n = 0; n < people; n++) {
    const cell = first + 2 * n;
    rows.set([0.5, 0.5, 0, 0, score, 1], cell * DETECTOR_COLUMNS);
  }
  return rows;
}

test(`people: ${MAX_PEOPLE} are drawn, one more is refused in one line (exit 1); boxes beyond 2^20 px too`, () => {
  assert.is(detectPeople(rowsWithPeople(MAX_PEOPLE, 0.9), 1)!.length, MAX_PEOPLE);
  const err = (() => { try { detectPeople(rowsWithPeople(MAX_PEOPLE + 1, 0.9), 1); } catch (e) { return e; } })();
  assert.instance(err, DiffuseError);
  assert.is((err as DiffuseError).exitCode, 1);
  assert.match((err as Error).message, /found 101 people, more than 100/);
  const huge = rowsWithPeople(1, 0.9);
  huge[(80 * 80 + 40 * 40) * DETECTOR_COLUMNS + 2] = 80;
  assert.throws(() => detectPeople(huge, 1), /far outside the picture/);
  assert.equal(detectPeople(rowsWithPeople(3, 0.3), 1)!.length, 3, 'float32(0.3) is above 0.3, as numpy compares it');
  assert.equal(detectPeople(rowsWithPeople(3, 0.29), 1), [], 'something found, no person');
  assert.is(detectPeople(rowsWithPeople(0, 0), 1), undefined, 'nothing found');
});

test('a picture past 2048x2048 (as it is or at res=) is refused before any network loads, as the other detectors', () => {
  assert.throws(() => checkDetectorPictureSize({ width: 2112, height: 2048 }, 'img', 'dwpose'), /type=dwpose runs its network on the picture as it is, and 2112x2048 .* is more than 4 megapixels/);
  assert.not.throws(() => checkDetectorPictureSize({ width: 2048, height: 2048 }, 'img', 'dwpose'));
});

test('a file that is not the expected network is refused in one line (exit 2)', async () => {
  const p = pictureOf(cases[0]!);
  for (const models of [{ detector: MODELS.pose, pose: MODELS.pose }, { detector: MODELS.detector, pose: MODELS.detector }]) {
    const err = await dwposeControlPicture(models, p, { device: 'cpu' }).then(() => undefined, (e: unknown) => e);
    assert.instance(err, DiffuseError);
    assert.is((err as DiffuseError).exitCode, 2);
    assert.match((err as Error).message, /is not DWPose's/);
    assert.not.match((err as Error).message, /\n/);
  }
  const dir = tmp('dwpose-hostile');
  const notOnnx = join(dir, 'not.onnx');
  writeFileSync(notOnnx, 'not a model');
  const err = await dwposeControlPicture({ detector: notOnnx, pose: MODELS.pose }, p, { device: 'cpu' }).then(() => undefined, (e: unknown) => e);
  assert.instance(err, DiffuseError);
});

test('--control type=dwpose,detector=DIR = its map given as type=none; Module: dw_openpose_full; a folder without the files: one line, exit 2', async () => {
  const model = assembleModel('tiny-sd-control');
  try {
    const dir = tmp('dwpose-cli');
    const models = join(dir, 'DWPose');
    mkdirSync(models);
    copyFileSync(MODELS.detector, join(models, 'yolox_l.onnx'));
    copyFileSync(MODELS.pose, join(models, 'dw-ll_ucoco_384.onnx'));
    const people = cases.find((c) => c.name === 'people')!;
    const picture = join(dir, 'people.png');
    writeFileSync(picture, await encodePng(pictureOf(people)));
    const controlnet = join(FIXTURES, 'tiny-sd-control', 'controlnet');
    const base = (out: string) => ['txt2img', 'a dancer', '--model', model.dir, '--steps', '2', '--seed', '5', '-W', '64', '-H', '64', '-o', out, '--quiet'];
    const out = join(dir, 'dwpose.png');
    const r = diffuse([...base(out), '--control', `type=dwpose,image=${picture},model=${controlnet},detector=${models}`]);
    assert.is(r.status, 0, r.stderr);
    const map = join(dir, 'map.png');
    writeFileSync(map, await encodePng(await dwposeControlPicture(MODELS, pictureOf(people), { device: 'cpu' })));
    const given = join(dir, 'given.png');
    assert.is(diffuse([...base(given), '--control', `type=none,image=${map},model=${controlnet}`]).status, 0);
    assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
    assert.match(meta.parameters.extra['ControlNet 0'] ?? '', /^Module: dw_openpose_full, Model: tiny-sd-control \[[0-9a-f]{8}\], Weight: 1\.0,/);
    const bad = join(dir, 'bad.png');
    const refused = diffuse([...base(bad), '--control', `type=dwpose,image=${picture},model=${controlnet},detector=${dir}`]);
    assert.is(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /has no yolox_l\.onnx; pass a folder holding yolox_l\.onnx and dw-ll_ucoco_384\.onnx/);
    assert.is(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.not.ok(existsSync(bad));
  } finally {
    model.remove();
  }
});

test.run();
