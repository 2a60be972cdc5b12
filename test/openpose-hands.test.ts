import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureConvertedDetector } from '../src/graphs/detector-convert.js';
import { CheckpointError } from '../src/graphs/errors.js';
import { PoseBoxesError } from '../src/image/errors.js';
import { loadImage } from '../src/image/load-image.js';
import { cropTopLeft, padEdgeTo64 } from '../src/image/pad-edge.js';
import { createRaster } from '../src/image/raster.js';
import { bodyEstimate, bodyInput } from '../src/image/preprocess/openpose-body.js';
import { MAX_POSE_BOXES, poseMap, type PoseParts } from '../src/image/preprocess/openpose-full.js';
import { drawFacePose, drawHandPose, type PoseKeypoint } from '../src/image/preprocess/openpose-hand-face-draw.js';
import { floatTensor, toFloat32 } from '../src/onnx/dtype.js';
import { openposeControlPicture } from '../src/pipeline/detector-control.js';
import { detectorFixtures, writeDetectorWeights } from './helpers/detector-weights.js';
import { openSession } from '../src/onnx/session.js';
import { compare, FIXTURES, readF32, readJson } from './helpers/fixtures.js';
import { tempDir } from './helpers/cli.js';
import { checkpointBytes, sha256, type Recipe } from './helpers/synthetic-checkpoint.js';

/**
 * OpenPose's hands and faces against controlnet_aux 0.0.10 (tools/make_openpose_hands_refs.py): util.draw_handpose and
 * util.draw_facepose on keypoints made as detect_hands / detect_face make them, byte for byte; and OpenposeDetector with
 * include_hand / include_face on the body's synthesised maps (test/fixtures/openpose) with the hand and face networks
 * replaced by maps made by arithmetic alone: every network input (SHA-256) and the whole map, 0 samples may differ; the
 * hand and face graphs built from random weights (synthetic recipes) against torch's handpose_model and FaceNet.
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

interface PoseCase {
  name: string;
  module: string;
  picture: string;
  pose: string;
  hand_inputs: string[];
  face_inputs: string[];
}
const cases = readJson<{ cases: PoseCase[] }>(join(DIR, 'cases.json')).cases;
const BODY = join(FIXTURES, 'openpose');

/** max(0, 1 - d^2 / r^2) * peak, as the tool computes it in float64. */
const cone = (x: number, y: number, cx: number, cy: number, radius: number, peak: number) => Math.max(0, 1 - ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (radius * radius)) * peak;

/** The tool's cones: positions, and a map per channel then the background 1 - max, as float32. */
function coneMaps(channels: number, side: number, cones: Array<{ channel: number; cx: number; cy: number; radius: number; peak: number }>): Float32Array {
  const plane = side * side;
  const maps = new Float64Array(channels * plane);
  for (const c of cones) {
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) maps[c.channel * plane + y * side + x] = Math.max(maps[c.channel * plane + y * side + x]!, cone(x, y, c.cx, c.cy, c.radius, c.peak));
  }
  for (let i = 0; i < plane; i++) {
    let top = 0;
    for (let k = 0; k < channels - 1; k++) top = Math.max(top, maps[k * plane + i]!);
    maps[(channels - 1) * plane + i] = 1 - top;
  }
  return Float32Array.from(maps);
}

const HAND: Array<[number, number] | undefined> = [
  [8, 14], [5, 12], [4, 10], [3, 8], [2, 6], [6, 8], [6, 6], [6, 4], [6, 2], [8, 7], [8, 5], [8, 3], undefined, [10, 8], [10, 6], [10, 4], [10, 3], [12, 9], [13, 7], [13, 6], [14, 5],
];
function handMaps(side: number): Float32Array {
  const cones = HAND.flatMap((p, channel) => (p ? [{ channel, cx: (p[0] / 16) * side, cy: (p[1] / 16) * side, radius: 3 / 2, peak: 0.9 }] : []));
  cones.push({ channel: 8, cx: (3 / 16) * side, cy: (13 / 16) * side, radius: 3 / 2, peak: 0.5 });
  return coneMaps(22, side, cones);
}
function faceMaps(): Float32Array {
  const cones = Array.from({ length: 70 }, (_, k) => k)
    .filter((k) => k !== 17 && k !== 40)
    .map((k) => ({ channel: k, cx: 4 + (k % 10) * 4 + Math.trunc(k / 10) / 8, cy: 6 + Math.trunc(k / 10) * 5 + (k % 3) / 4, radius: 5 / 4, peak: 0.8 }));
  return coneMaps(71, 48, cones);
}

const PARTS: Record<string, PoseParts> = {
  openpose_hand: { body: true, hands: true, face: false },
  openpose_face: { body: true, hands: false, face: true },
  openpose_faceonly: { body: false, hands: false, face: true },
  openpose_full: { body: true, hands: true, face: true },
};

async function bodyOf(picture: string) {
  const rgb = (await loadImage(join(BODY, picture))).rgb;
  const padded = padEdgeTo64(rgb);
  const input = bodyInput(padded);
  const raw = gunzipSync(readFileSync(join(BODY, 'maps.bin.gz')));
  const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const pafCount = 38 * 23 * 16;
  return { rgb, padded, estimate: bodyEstimate({ pafs: values.subarray(0, pafCount), heatmaps: values.subarray(pafCount), width: 16, height: 23 }, input) };
}

for (const c of cases) {
  test(`${c.name}: ${c.module} = controlnet_aux's map, every network input equal`, async () => {
    const { rgb, padded, estimate } = await bodyOf(c.picture);
    const seen = { hand: [] as string[], face: [] as string[] };
    const made = await poseMap(estimate, padded, PARTS[c.module]!, {
      hand: async (input, side) => {
        seen.hand.push(sha(input));
        return handMaps(side / 8);
      },
      face: async (input) => {
        seen.face.push(sha(input));
        return faceMaps();
      },
    });
    assert.equal(seen.hand, c.hand_inputs, "the hand network's inputs");
    assert.equal(seen.face, c.face_inputs, "the face network's inputs");
    const map = cropTopLeft(made, rgb.width, rgb.height);
    const expected = (await loadImage(join(DIR, c.pose))).rgb;
    assert.equal([map.width, map.height], [expected.width, expected.height]);
    let differ = 0;
    for (let i = 0; i < map.data.length; i++) if (map.data[i] !== expected.data[i]) differ++;
    assert.is(differ, 0, `${differ} samples differ from controlnet_aux's map`);
  });
}

test(`more than ${MAX_POSE_BOXES} hands and faces: one typed line, exit 1, before any network runs`, async () => {
  const { padded, estimate } = await bodyOf('people-256x384.png');
  const crowd = { candidate: estimate.candidate, subset: Array.from({ length: 12 }, () => estimate.subset[0]!) };
  let runs = 0;
  const count = async () => {
    runs++;
    return new Float32Array(0);
  };
  await poseMap(crowd, padded, PARTS.openpose_full!, { hand: count, face: count }).then(
    () => assert.unreachable('a crowd of 36 boxes ran'),
    (err: unknown) => assert.ok(err instanceof PoseBoxesError && err.exitCode === 1 && err.boxes === 36 && !err.message.includes('\n'), String(err)),
  );
  assert.is(runs, 0);
});

const info = readJson<{ recipes: Record<'hand' | 'face', { safetensors_sha256: string }>; networks: Array<{ name: 'hand' | 'face'; picture: string; network: { file: string; shape: number[] } }> }>(join(DIR, 'cases.json'));
let weightsDir = '';
/** The random network's weights written from its recipe, checked to be the file the references were made from. */
function weights(name: 'hand' | 'face'): string {
  weightsDir ||= tempDir('openpose-hands');
  const bytes = checkpointBytes(readJson<Recipe>(join(DIR, `${name}.recipe.json.gz`)));
  assert.is(sha256(bytes), info.recipes[name].safetensors_sha256, 'the recipe writes the file the references were made from');
  const path = join(weightsDir, `${name}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}

for (const c of info.networks) {
  test(`the ${c.name} graph gives torch's last-stage maps (${c.network.shape.join('x')})`, async () => {
    const graph = await ensureConvertedDetector(`openpose-${c.name}`, weights(c.name), join(weightsDir, 'cache'));
    const picture = (await loadImage(join(DIR, c.picture))).rgb;
    const plane = picture.width * picture.height;
    const bgr = Float32Array.from({ length: 3 * plane }, (_, i) => picture.data[(i % plane) * 3 + 2 - Math.floor(i / plane)]! / 256 - 0.5);
    const opened = await openSession(graph, { device: 'cpu' });
    try {
      const out = await opened.session.run({ image: floatTensor('float32', bgr, [1, 3, picture.height, picture.width]) });
      assert.equal([...out.heatmaps!.dims], c.network.shape);
      const stats = compare(toFloat32(out.heatmaps!), readF32(join(DIR, c.network.file)));
      assert.ok(stats.relToMax <= 1e-5, `max diff ${stats.relToMax} of max`);
    } finally {
      await opened.session.release();
    }
  });
}

test("a hand file given as the face network, or the body's as the hand's: one line naming the field, exit 2", async () => {
  const hand = weights('hand');
  const face = weights('face');
  await ensureConvertedDetector('openpose-face', hand, join(weightsDir, 'cache')).then(
    () => assert.unreachable('the hand file built as a face network'),
    (err: unknown) => assert.ok(err instanceof CheckpointError && err.exitCode === 2 && /hand\.safetensors is not OpenPose's facenet\.pth \(conv6_2_CPM\.weight has shape \[22, 512, 1, 1\], expected \[71, 512, 1, 1\]\); pass lllyasviel\/Annotators' facenet\.pth as face-detector=$/.test(err.message), String(err)),
  );
  await ensureConvertedDetector('openpose-hand', face, join(weightsDir, 'cache')).then(
    () => assert.unreachable('the face file built as a hand network'),
    (err: unknown) => assert.ok(err instanceof CheckpointError && /is not OpenPose's hand_pose_model\.pth .*as hand-detector=$/.test(err.message), String(err)),
  );
});

test("openposeControlPicture with the built body and face graphs: openpose_faceonly draws only the faces' white dots", async () => {
  const face = await ensureConvertedDetector('openpose-face', weights('face'), join(weightsDir, 'cache'));
  const body = await ensureConvertedDetector('openpose', writeDetectorWeights('openpose', weightsDir), join(weightsDir, 'cache'));
  // The random body network finds 10 people here, 7 with a face box: 7 runs of the face graph at 384x384.
  const picture = (await loadImage(join(detectorFixtures('openpose'), 'scene-64x40.png'))).rgb;
  const map = await openposeControlPicture(body, picture, { device: 'cpu' }, PARTS.openpose_faceonly!, { face });
  assert.equal([map.width, map.height], [picture.width, picture.height]);
  const white = map.data.filter((v) => v === 255).length;
  assert.ok(white > 0 && map.data.every((v) => v === 0 || v === 255), `${white} white samples, the rest black`);
});

test('no keypoints draw nothing', () => {
  const canvas = createRaster(32, 32, 3);
  drawHandPose(canvas, undefined);
  drawHandPose(canvas, []);
  drawFacePose(canvas, undefined);
  assert.ok(canvas.data.every((v) => v === 0));
});

test.after(() => {
  if (weightsDir) rmSync(weightsDir, { recursive: true, force: true });
});

test.run();
