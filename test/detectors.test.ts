import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openWeightFile } from '../src/graphs/checkpoint-store.js';
import { ensureConvertedDetector } from '../src/graphs/detector-convert.js';
import { CheckpointError } from '../src/graphs/errors.js';
import { buildHed } from '../src/graphs/hed.js';
import { buildPidinet } from '../src/graphs/pidinet.js';
import { loadImage } from '../src/image/load-image.js';
import { cropTopLeft, padEdgeTo64 } from '../src/image/pad-edge.js';
import { PoseInputError, TooManyPeaksError } from '../src/image/errors.js';
import { bodyEstimate, bodyInput, MAX_PEAKS_PER_PART, type BodyEstimate } from '../src/image/preprocess/openpose-body.js';
import { bodyPoseMap } from '../src/image/preprocess/openpose-draw.js';
import type { Raster } from '../src/image/raster.js';
import { floatTensor, toFloat32 } from '../src/onnx/dtype.js';
import { openSession } from '../src/onnx/session.js';
import { hedControlPicture, lineartAnimeControlPicture, lineartControlPicture, openposeControlPicture, pidinetControlPicture } from '../src/pipeline/detector-control.js';
import { compare, readF32, readJson } from './helpers/fixtures.js';
import { detectorFixtures, detectorRecipe, writeDetectorWeights, type DetectorFixture } from './helpers/detector-weights.js';
import { scratch } from './helpers/scratch.js';
import { checkpointBytes } from './helpers/synthetic-checkpoint.js';

/**
 * The preprocessor networks built from weight files (tools/make_hed_refs.py, make_pidinet_refs.py, make_lineart_refs.py, make_lineart_anime_refs.py, make_openpose_refs.py:
 * controlnet_aux 0.0.10 on random networks written from synthetic recipes): each built graph's
 * outputs within 1e-5 of their largest value (ORT vs torch), and the 8-bit maps equal but for pixels
 * one step off where a float lands on a truncation boundary (at most MAX_OFF_BY_ONE per picture;
 * none seen on this machine): the detectors' whole call on pictures whose sides are multiples of 64,
 * and sd-webui-controlnet's hed()/pidinet()/lineart() (edge-padded to 64, cropped back) on a 45x70 one.
 */
const MAX_OFF_BY_ONE = 8;

interface Case {
  name: string;
  module: string;
  picture: string;
  edge?: string;
  lines?: string;
  projections?: { file: string; shapes: number[][] };
  /** lineart_anime's: the output on the picture repeated `repeat` times each way, sampled every `stride` rows and columns. */
  output?: { file: string; shape: number[]; repeat?: number; stride?: number };
  network?: { file: string; shapes: number[][] };
  pose?: string;
  maps?: { file: string; shapes: number[][] };
  network_input?: { shape: number[]; sha256: string };
  candidate?: number[][];
  subset?: number[][];
}
const casesOf = (kind: DetectorFixture) => readJson<{ cases: Case[] }>(join(detectorFixtures(kind), 'cases.json')).cases;

const test = suite('preprocessor networks = controlnet_aux');
const tmp = scratch(test);
// M-LSD's graph is test/mlsd.test.ts's.
type Built = Exclude<DetectorFixture, 'mlsd'>;
const graphs: Record<Built, string> = { hed: '', lineart: '', 'lineart-anime': '', openpose: '', pidinet: '' };

test.before(async () => {
  const dir = tmp('detectors');
  for (const kind of ['hed', 'lineart', 'lineart-anime', 'openpose', 'pidinet'] as const) graphs[kind] = await ensureConvertedDetector(kind, writeDetectorWeights(kind, dir), join(dir, 'cache'));
});

/** Every `stride`-th row and column of each [1, C, H, W] plane. */
function sampled(values: Float32Array, dims: readonly number[], stride: number): Float32Array {
  const [, channels, height, width] = dims as [number, number, number, number];
  const out: number[] = [];
  for (let c = 0; c < channels; c++) for (let y = 0; y < height; y += stride) for (let x = 0; x < width; x += stride) out.push(values[(c * height + y) * width + x]!);
  return Float32Array.from(out);
}

/**
 * The graph's outputs on a picture (RGB, or BGR when `bgr`, through `scale`; each pixel repeated `repeat` times each
 * way, sampled every `stride` rows and columns), concatenated, against torch's.
 */
async function checkGraph(kind: Built, c: Case, scale: (v: number) => number, outputs: { names: string[]; shapes: number[][]; file: string }, options: { bgr?: boolean; repeat?: number; stride?: number } = {}): Promise<void> {
  const { bgr = false, repeat = 1, stride = 1 } = options;
  const small = (await loadImage(join(detectorFixtures(kind), c.picture))).rgb;
  const width = small.width * repeat;
  const height = small.height * repeat;
  const plane = width * height;
  const sample = (i: number) => Math.floor(Math.floor(i / width) / repeat) * small.width + Math.floor((i % width) / repeat);
  const channel = (i: number) => (bgr ? 2 - Math.floor(i / plane) : Math.floor(i / plane));
  const pixels = Float32Array.from({ length: 3 * plane }, (_, i) => scale(small.data[sample(i % plane) * 3 + channel(i)]!));
  const opened = await openSession(graphs[kind], { device: 'cpu' });
  try {
    const out = await opened.session.run({ image: floatTensor('float32', pixels, [1, 3, height, width]) });
    const got: number[] = [];
    outputs.names.forEach((name, k) => {
      const values = sampled(toFloat32(out[name]!), out[name]!.dims, stride);
      assert.equal(values.length, outputs.shapes[k]!.reduce((n, d) => n * d, 1), `${name}: ${out[name]!.dims.join('x')}`);
      got.push(...values);
    });
    const stats = compare(got, readF32(join(detectorFixtures(kind), outputs.file)));
    assert.ok(stats.relToMax <= 1e-5, `${kind}: max diff ${stats.relToMax} of max`);
  } finally {
    await opened.session.release();
  }
}

test("HED's graph gives torch's five projections", async () => {
  const c = casesOf('hed').find((x) => x.projections)!;
  await checkGraph('hed', c, (v) => v, { names: [1, 2, 3, 4, 5].map((k) => `projection${k}`), shapes: c.projections!.shapes, file: c.projections!.file });
});

test("PiDiNet's graph (pixel differences as plain convolutions, RGB) gives torch's fused edge (BGR)", async () => {
  const c = casesOf('pidinet').find((x) => x.output)!;
  await checkGraph('pidinet', c, (v) => Math.fround(v / 255), { names: ['edge'], shapes: [c.output!.shape], file: c.output!.file });
});

test("lineart_anime's graph gives torch's map (every 4th row and column of 256x256)", async () => {
  const c = casesOf('lineart-anime').find((x) => x.output)!;
  const { repeat, stride } = c.output!;
  await checkGraph('lineart-anime', c, (v) => Math.fround(Math.fround(v / 127.5) - 1), { names: ['line'], shapes: [c.output!.shape], file: c.output!.file }, { repeat, stride });
});

test("lineart's graph gives torch's map", async () => {
  const c = casesOf('lineart').find((x) => x.output)!;
  await checkGraph('lineart', c, (v) => Math.fround(v / 255), { names: ['lines'], shapes: [c.output!.shape], file: c.output!.file });
});

test("OpenPose's graph gives torch's part affinity fields and heatmaps", async () => {
  const c = casesOf('openpose').find((x) => x.network)!;
  // Body.__call__'s input: the BGR picture as float32 / 256 - 0.5 (both steps exact in float32).
  await checkGraph('openpose', c, (v) => v / 256 - 0.5, { names: ['pafs', 'heatmaps'], shapes: c.network!.shapes, file: c.network!.file }, { bgr: true });
});

/** `made` against the reference map: no pixel more than `maxStep` off, at most MAX_OFF_BY_ONE off at all. */
async function checkMap(made: Raster, reference: string, maxStep: number): Promise<void> {
  const expected = (await loadImage(reference)).rgb;
  assert.equal([made.width, made.height, made.channels], [expected.width, expected.height, 1]);
  let off = 0;
  for (let i = 0; i < made.data.length; i++) {
    const d = Math.abs(made.data[i]! - expected.data[i * 3]!);
    assert.ok(d <= maxStep, `pixel ${i}: ${made.data[i]} vs ${expected.data[i * 3]}`);
    off += d;
  }
  assert.ok(off <= MAX_OFF_BY_ONE, `${off} pixels one step off`);
}

for (const c of casesOf('hed')) {
  test(`${c.name}: ${c.module} edge map`, async () => {
    const picture = (await loadImage(join(detectorFixtures('hed'), c.picture))).rgb;
    const safe = c.module === 'softedge_hedsafe';
    // safe_step leaves 0, 127 and 255 only: a map one step off would be a wrong quantisation.
    await checkMap(await hedControlPicture(graphs.hed, picture, safe, { device: 'cpu' }), join(detectorFixtures('hed'), c.edge!), safe ? 0 : 1);
  });
}

for (const c of casesOf('pidinet')) {
  test(`${c.name}: ${c.module} edge map`, async () => {
    const picture = (await loadImage(join(detectorFixtures('pidinet'), c.picture))).rgb;
    const safe = c.module === 'softedge_pidisafe';
    await checkMap(await pidinetControlPicture(graphs.pidinet, picture, safe, { device: 'cpu' }), join(detectorFixtures('pidinet'), c.edge!), safe ? 0 : 1);
  });
}

for (const c of casesOf('lineart-anime')) {
  test(`${c.name}: ${c.module} line map`, async () => {
    const picture = (await loadImage(join(detectorFixtures('lineart-anime'), c.picture))).rgb;
    await checkMap(await lineartAnimeControlPicture(graphs['lineart-anime'], picture, { device: 'cpu' }), join(detectorFixtures('lineart-anime'), c.lines!), 1);
  });
}

for (const c of casesOf('lineart')) {
  test(`${c.name}: ${c.module} line map`, async () => {
    const picture = (await loadImage(join(detectorFixtures('lineart'), c.picture))).rgb;
    await checkMap(await lineartControlPicture(graphs.lineart, picture, { device: 'cpu' }), join(detectorFixtures('lineart'), c.lines!), 1);
  });
}

/** Equal ids and positions; scores (the network's values) within 1e-5 of the largest, ORT against torch. */
function checkEstimate(got: BodyEstimate, c: Case): void {
  const within = (a: number[][], b: number[][], scoreColumns: number[]) => {
    assert.is(a.length, b.length);
    const scale = Math.max(...b.flatMap((row) => scoreColumns.map((k) => Math.abs(row[k]!))), 1e-30);
    a.forEach((row, i) => row.forEach((v, k) => {
      if (scoreColumns.includes(k)) assert.ok(Math.abs(v - b[i]![k]!) <= 1e-5 * scale, `row ${i} column ${k}: ${v} vs ${b[i]![k]}`);
      else assert.is(v, b[i]![k], `row ${i} column ${k}`);
    }));
  };
  within(got.candidate, c.candidate!, [2]);
  within(got.subset, c.subset!, [18]);
}

test("scene-64: the random network's whole OpenPose detector (peaks, people, map)", async () => {
  const c = casesOf('openpose').find((x) => x.name === 'scene-64')!;
  const picture = (await loadImage(join(detectorFixtures('openpose'), c.picture))).rgb;
  const input = bodyInput(padEdgeTo64(picture));
  const opened = await openSession(graphs.openpose, { device: 'cpu' });
  try {
    const out = await opened.session.run({ image: floatTensor('float32', input.image, [1, 3, input.paddedHeight, input.paddedWidth]) });
    checkEstimate(bodyEstimate({ pafs: toFloat32(out.pafs!), heatmaps: toFloat32(out.heatmaps!), width: out.heatmaps!.dims[3]!, height: out.heatmaps!.dims[2]! }, input), c);
  } finally {
    await opened.session.release();
  }
  const made = await openposeControlPicture(graphs.openpose, picture, { device: 'cpu' });
  const expected = (await loadImage(join(detectorFixtures('openpose'), c.pose!))).rgb;
  let differ = 0;
  for (let i = 0; i < made.data.length; i++) if (made.data[i] !== expected.data[i]) differ++;
  assert.is(differ, 0, `${differ} samples differ from controlnet_aux's map`);
});

for (const c of casesOf('openpose').filter((x) => x.maps)) {
  test(`${c.name}: openpose keypoints, people and map from synthesised network outputs`, async () => {
    const dir = detectorFixtures('openpose');
    const picture = (await loadImage(join(dir, c.picture))).rgb;
    const input = bodyInput(padEdgeTo64(picture));
    assert.equal([1, 3, input.paddedHeight, input.paddedWidth], c.network_input!.shape);
    assert.is(createHash('sha256').update(new Uint8Array(input.image.buffer)).digest('hex'), c.network_input!.sha256, "the network's input is Body.__call__'s, bit for bit");
    const raw = gunzipSync(readFileSync(join(dir, c.maps!.file)));
    const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const [pafShape, heatShape] = c.maps!.shapes as [number[], number[]];
    const pafCount = pafShape.reduce((a, b) => a * b, 1);
    const maps = { pafs: values.subarray(0, pafCount), heatmaps: values.subarray(pafCount), width: heatShape[3]!, height: heatShape[2]! };
    const estimate = bodyEstimate(maps, input);
    assert.equal(estimate.candidate, c.candidate);
    assert.equal(estimate.subset, c.subset);
    const made = cropTopLeft(bodyPoseMap(maps, input), picture.width, picture.height);
    const expected = (await loadImage(join(dir, c.pose!))).rgb;
    assert.equal([made.width, made.height, made.channels], [expected.width, expected.height, 3]);
    let differ = 0;
    for (let i = 0; i < made.data.length; i++) if (made.data[i] !== expected.data[i]) differ++;
    assert.is(differ, 0, `${differ} samples differ from controlnet_aux's map`);
  });
}

test('a heatmap of more than 100 peaks for a part, or a picture too narrow to scale: one-line typed errors', async () => {
  const c = casesOf('openpose').find((x) => x.maps)!;
  const picture = (await loadImage(join(detectorFixtures('openpose'), c.picture))).rgb;
  const input = bodyInput(padEdgeTo64(picture));
  const [width, height] = [input.paddedWidth / 8, input.paddedHeight / 8];
  // Part 0's heatmap a checkerboard of 0.9: half the map's cells stay separate peaks after the smoothing.
  const heatmaps = new Float32Array(19 * width * height);
  for (let i = 0; i < width * height; i++) heatmaps[i] = (Math.floor(i / width) + (i % width)) % 2 === 0 ? 0.9 : 0;
  assert.throws(() => bodyEstimate({ pafs: new Float32Array(38 * width * height), heatmaps, width, height }, input), (err: unknown) => err instanceof TooManyPeaksError && err.exitCode === 1 && err.peaks > MAX_PEAKS_PER_PART && /has \d+ peaks for body part 0, more than 100;/.test(err.message) && !err.message.includes('\n'));
  const narrow = { width: 1, height: 200, channels: 3 as const, data: new Uint8Array(600) };
  assert.throws(() => bodyInput(narrow), (err: unknown) => err instanceof PoseInputError && err.exitCode === 2 && /1x200 picture scales to 184 rows and no column/.test(err.message));
});

test('a weight file that is not HED: one line naming what is wrong', async () => {
  const dir = tmp('not-hed');
  const path = join(dir, 'other.safetensors');
  writeFileSync(path, checkpointBytes({ seed: 1, tensors: detectorRecipe('hed').tensors.slice(0, 5) }));
  const store = await openWeightFile(path);
  try {
    assert.throws(() => buildHed(store), (err: unknown) => err instanceof CheckpointError && /is not HED's ControlNetHED\.pth \(no tensor block1\.projection\.weight\)/.test(err.message) && !err.message.includes('\n'));
  } finally {
    await store.close();
  }
});

test('PiDiNet: a state dict without the module. prefix builds too; another network is one line', async () => {
  const dir = tmp('pidinet-keys');
  const strip = (key: string) => key.replace(/^module\./, '');
  const stripped = join(dir, 'stripped.safetensors');
  writeFileSync(stripped, checkpointBytes({ ...detectorRecipe('pidinet'), tensors: detectorRecipe('pidinet').tensors.map(([key, ...rest]) => [strip(key), ...rest]) }));
  const hed = join(dir, 'hed.safetensors');
  writeFileSync(hed, checkpointBytes(detectorRecipe('hed')));
  const store = await openWeightFile(stripped);
  const other = await openWeightFile(hed);
  try {
    assert.ok(buildPidinet(store).weights.some((w) => w.name === 'init_block.weight'));
    assert.throws(() => buildPidinet(other), (err: unknown) => err instanceof CheckpointError && /hed\.safetensors is not PiDiNet's table5_pidinet\.pth \(no tensor module\.init_block\.weight\); pass lllyasviel\/Annotators' table5_pidinet\.pth as detector=$/.test(err.message));
  } finally {
    await store.close();
    await other.close();
  }
});

test.run();
