import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openWeightFile } from '../src/graphs/checkpoint-store.js';
import { ensureConvertedDetector } from '../src/graphs/detector-convert.js';
import { CheckpointError } from '../src/graphs/errors.js';
import { buildMlsd } from '../src/graphs/mlsd.js';
import { loadImage } from '../src/image/load-image.js';
import { MLSD_TOP_K, mlsdLines, mlsdSegments } from '../src/image/preprocess/mlsd-lines.js';
import { torchSigmoid } from '../src/image/preprocess/torch-sigmoid.js';
import type { Raster } from '../src/image/raster.js';
import { floatTensor, toFloat32 } from '../src/onnx/dtype.js';
import { openSession } from '../src/onnx/session.js';
import { mlsdControlPicture } from '../src/pipeline/detector-control.js';
import { compare, readF32, readJson } from './helpers/fixtures.js';
import { detectorFixtures, detectorRecipe, writeDetectorWeights } from './helpers/detector-weights.js';
import { scratch } from './helpers/scratch.js';
import { checkpointBytes } from './helpers/synthetic-checkpoint.js';

/**
 * --control type=mlsd against tools/make_mlsd_refs.py (controlnet_aux 0.0.10's MLSDdetector, the code of
 * sd-webui-controlnet's apply_mlsd, torch 2.5.1, OpenCV 4.11): torch's float32 sigmoid bit for bit; the graph built
 * from a random mlsd_large_512_fp32.pth within 1e-5 of its largest output; pred_lines and the drawing on synthesised
 * maps, and the whole detector on three scenes, with 0 pixels differing.
 */

interface Case {
  name: string;
  picture?: string;
  width?: number;
  height?: number;
  value: number;
  distance: number;
  lines: string;
  output?: { file: string; shape: number[]; stride: number };
  override?: { index: number; channel: number; value: number | 'NaN' };
  step?: number;
  count?: number;
  sha256?: string;
}
const cases = readJson<{ cases: Case[] }>(join(detectorFixtures('mlsd'), 'cases.json')).cases;
const fixture = (name: string) => join(detectorFixtures('mlsd'), name);

const test = suite('M-LSD = controlnet_aux / sd-webui-controlnet');
const tmp = scratch(test);
let graph = '';

test.before(async () => {
  const dir = tmp('mlsd');
  graph = await ensureConvertedDetector('mlsd', writeDetectorWeights('mlsd', dir), join(dir, 'cache'));
});

/** make_mlsd_refs.py's synthesised maps [5, h, w] (channels 0..4; its 5..8 are zeros pred_lines does not read). */
function synthesised(width: number, height: number, override?: Case['override']): Float32Array {
  const n = width * height;
  const maps = new Float32Array(5 * n);
  for (let i = 0; i < n; i++) {
    maps[i] = Math.fround((((i * 37) % n) / n) * 20 - 10);
    for (let c = 1; c < 5; c++) maps[c * n + i] = Math.fround((((i * 7919 + c * 104729) % 1009) / 1009) * 60 - 30);
  }
  if (override) maps[override.channel * n + override.index] = override.value === 'NaN' ? Number.NaN : override.value;
  return maps;
}

async function assertSameMap(made: Raster, reference: string): Promise<void> {
  const expected = (await loadImage(reference)).rgb;
  assert.equal([made.width, made.height, made.channels], [expected.width, expected.height, 1]);
  let differ = 0;
  for (let i = 0; i < made.data.length; i++) if (made.data[i] !== expected.data[i * 3]) differ++;
  assert.is(differ, 0, `${differ} pixels differ`);
  assert.ok(made.data.some((v) => v === 255), 'the reference draws lines');
}

test("torch.sigmoid's float32 values (SLEEF's expf), bit for bit", () => {
  const c = cases.find((x) => x.name === 'sigmoid')!;
  const bits = new Uint32Array(c.count!);
  const half = Math.ceil(0x7f800000 / c.step!);
  for (let i = 0; i < c.count!; i++) bits[i] = i < half ? i * c.step! : ((i - half) * c.step! | 0x80000000) >>> 0;
  const x = new Float32Array(bits.buffer);
  const out = Float32Array.from(x, torchSigmoid);
  assert.is(createHash('sha256').update(new Uint8Array(out.buffer)).digest('hex'), c.sha256);
});

test("the graph gives torch's centre and displacement maps", async () => {
  const c = cases.find((x) => x.output)!;
  const picture = (await loadImage(fixture(c.picture!))).rgb;
  const plane = picture.width * picture.height;
  const scale = (v: number) => Math.fround(Math.fround(v / 127.5) - 1);
  const pixels = Float32Array.from({ length: 4 * plane }, (_, i) => scale(i < 3 * plane ? picture.data[(i % plane) * 3 + Math.floor(i / plane)]! : 1));
  const opened = await openSession(graph, { device: 'cpu' });
  try {
    const { maps } = await opened.session.run({ image: floatTensor('float32', pixels, [1, 4, picture.height, picture.width]) });
    const [, channels, height, width] = maps!.dims as [number, number, number, number];
    assert.equal([channels, height, width], [5, picture.height / 2, picture.width / 2]);
    const values = toFloat32(maps!);
    const got: number[] = [];
    for (let ch = 0; ch < channels; ch++) for (let y = 0; y < height; y += c.output!.stride) for (let x = 0; x < width; x += c.output!.stride) got.push(values[(ch * height + y) * width + x]!);
    const stats = compare(got, readF32(fixture(c.output!.file)));
    assert.ok(stats.relToMax <= 1e-5, `max diff ${stats.relToMax} of max`);
  } finally {
    await opened.session.release();
  }
});

for (const c of cases.filter((x) => x.name.startsWith('synth-'))) {
  test(`${c.name}: pred_lines and cv2.line on synthesised maps (value ${c.value}, distance ${c.distance})`, async () => {
    const [width, height] = [c.width! / 2, c.height! / 2];
    await assertSameMap(mlsdLines({ maps: synthesised(width, height, c.override), width, height }, c.width!, c.height!, c), fixture(c.lines));
  });
}

for (const c of cases.filter((x) => x.picture)) {
  test(`${c.name}: the detector's map (value ${c.value}, distance ${c.distance})`, async () => {
    const picture = (await loadImage(fixture(c.picture!))).rgb;
    await assertSameMap(await mlsdControlPicture(graph, picture, c, { device: 'cpu' }), fixture(c.lines));
  });
}

test('top-k bounds the work: a flat 1024x1024 map (every centre a maximum) gives at most 200 segments', () => {
  const [width, height] = [1024, 1024];
  const maps = new Float32Array(5 * width * height).fill(1);
  for (let i = 0; i < width * height; i++) maps[3 * width * height + i] = 5;
  const segments = mlsdSegments({ maps, width, height }, { value: 0.1, distance: 0.1 });
  assert.is(segments.length, MLSD_TOP_K);
});

test('another network or a damaged file is refused in one line', async () => {
  const dir = tmp('mlsd-wrong');
  const recipe = detectorRecipe('mlsd');
  const missing = join(dir, 'missing.safetensors');
  writeFileSync(missing, checkpointBytes({ ...recipe, tensors: recipe.tensors.filter(([key]) => key !== 'block23.conv3.bias') }));
  const store = await openWeightFile(missing);
  try {
    assert.throws(() => buildMlsd(store), (err: unknown) => err instanceof CheckpointError && /missing\.safetensors is not M-LSD's mlsd_large_512_fp32\.pth \(no tensor block23\.conv3\.bias\); pass lllyasviel\/Annotators' mlsd_large_512_fp32\.pth as detector=$/.test(err.message));
  } finally {
    await store.close();
  }
  const pidinet = await openWeightFile(writeDetectorWeights('pidinet', dir));
  try {
    assert.throws(() => buildMlsd(pidinet), (err: unknown) => err instanceof CheckpointError && /is not M-LSD's mlsd_large_512_fp32\.pth \(no tensor backbone\.features\.0\.0\.weight\)/.test(err.message));
  } finally {
    await pidinet.close();
  }
});

test.run();
