import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clipPixels } from '../src/image/clip-pixels.js';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { openSession } from '../src/onnx/session.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { readClipProcessor, SafetyChecker } from '../src/pipeline/safety-checker.js';
import { assembleWithSafetyChecker } from './helpers/assemble-model.js';
import { TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { tinyRequest } from './helpers/tiny-model.js';

// References: tools/make_safety_fixture.py (transformers 4.46.3 CLIPImageProcessor, diffusers 0.32.2
// StableDiffusionSafetyChecker.forward and its ONNX export under onnxruntime).
const DIR = join(FIXTURES, 'tiny-safety');
interface Picture { name: string; png: string; width: number; height: number; pixel_values: { shape: number[]; sha256: string; stride: number; sample: number[] } }
interface Verdict { nsfw: boolean; special_care: boolean }
const cases = readJson<{ pictures: Picture[]; checkers: Record<string, Record<string, Verdict>> }>(join(DIR, 'refs', 'cases.json'));
const picture = async (p: Picture) => (await loadImage(readFileSync(join(DIR, 'refs', p.png)))).rgb;

const pre = suite('CLIPImageProcessor = transformers');
for (const folder of ['feature_extractor', 'feature_extractor-current']) {
  pre(`${folder}: pixel_values bit for bit (resize, centre crop, rescale, normalise)`, async () => {
    const settings = readClipProcessor(join(DIR, folder, 'preprocessor_config.json'));
    for (const p of cases.pictures) {
      const got = clipPixels(settings, await picture(p));
      assert.equal([1, 3, got.height, got.width], p.pixel_values.shape, p.name);
      const sample = p.pixel_values.sample.map((_, i) => got.data[i * p.pixel_values.stride]!);
      const worst = Math.max(...sample.map((v, i) => Math.abs(v - p.pixel_values.sample[i]!)));
      const hash = createHash('sha256').update(new Uint8Array(got.data.buffer, got.data.byteOffset, got.data.byteLength)).digest('hex');
      assert.is(hash, p.pixel_values.sha256, `${p.name}: float32 bytes differ (strided sample worst ${worst})`);
    }
  });
}
pre('a processor whose crop is larger than the resized picture pads with zeros, as center_crop', () => {
  const image = { width: 4, height: 2, channels: 3 as const, data: Uint8Array.from({ length: 24 }, (_, i) => 10 + i) };
  const out = clipPixels({ resample: 'bicubic', crop: { width: 3, height: 4 }, rescale: undefined, norm: undefined }, image);
  // rows: one padded, the picture's two rows from column floor((4 - 3) / 2) = 0, one padded
  assert.equal(Array.from(out.data.subarray(0, 12)), [0, 0, 0, 10, 13, 16, 22, 25, 28, 0, 0, 0]);
});
pre.run();

const flags = suite('safety checker flags = diffusers StableDiffusionSafetyChecker');
for (const folder of ['safety_checker', 'safety_checker-flags-all']) {
  flags(`${folder}: every crafted picture`, async () => {
    const opened = await openSession(join(DIR, folder, 'model.onnx'), { device: 'cpu' });
    try {
      const checker = new SafetyChecker(opened, readClipProcessor(join(DIR, 'feature_extractor', 'preprocessor_config.json')));
      for (const p of cases.pictures) assert.is(await checker.flags(await picture(p)), cases.checkers[folder]![p.name]!.nsfw, `${folder} ${p.name}`);
    } finally {
      await opened.session.release();
    }
  });
}
flags('the crafted set covers a clean picture, a flagged one and one flagged only through special care', () => {
  const v = Object.values(cases.checkers.safety_checker!);
  assert.ok(v.some((x) => !x.nsfw) && v.some((x) => x.nsfw && !x.special_care) && v.some((x) => x.nsfw && x.special_care));
});
flags.run();

const run = suite('--safety-checker through generate() and the CLI');
run('generate(): a flagged image is black (or blurred) and recorded; the checker changes nothing else', async () => {
  const model = assembleWithSafetyChecker('safety_checker-flags-all');
  const bundle = await loadModel(model.dir, { device: 'cpu', withSafetyChecker: true });
  try {
    const plain = (await generate(bundle, tinyRequest())).images[0]!;
    assert.is(plain.metadata.safetyCheck, undefined);
    const black = (await generate(bundle, tinyRequest({ safetyCheck: 'black' }))).images[0]!;
    assert.ok(black.image.data.every((v) => v === 0), 'black');
    assert.equal(black.metadata.safetyCheck, { nsfw: true, action: 'black' });
    const { safetyCheck: _, ...rest } = black.metadata;
    assert.equal(rest, plain.metadata);
    const blurred = (await generate(bundle, tinyRequest({ safetyCheck: 'blur' }))).images[0]!.image;
    const detail = (img: Uint8Array) => img.reduce((sum, v, i) => (i >= 3 ? sum + Math.abs(v - img[i - 3]!) : sum), 0);
    assert.ok(detail(blurred.data) < detail(plain.image.data) / 4, `blurred detail ${detail(blurred.data)} vs ${detail(plain.image.data)}`);
    const mean = (img: Uint8Array) => img.reduce((a, v) => a + v, 0) / img.length;
    assert.ok(Math.abs(mean(blurred.data) - mean(plain.image.data)) < 8, 'a blur keeps the mean colour');
  } finally {
    await bundle.release();
    model.remove();
  }
});

run('a request for the checker on a bundle loaded without it is refused before any step', async () => {
  const bundle = await loadModel(TINY_SD, { device: 'cpu' });
  try {
    await generate(bundle, tinyRequest({ safetyCheck: 'black' })).then(
      () => assert.unreachable('refused'),
      (err: Error) => assert.match(err.message, /loaded without/),
    );
  } finally {
    await bundle.release();
  }
});

run('CLI: passed or flagged in the parameters and in --json; --from takes it again', () => {
  const model = assembleWithSafetyChecker('safety_checker-flags-all');
  try {
    const dir = tempDir();
    const out = join(dir, 'x.png');
    const r = diffuse(['txt2img', 'a fox', '--model', model.dir, '--steps', '2', '--seed', '3', '--safety-checker', '--safety-action', 'blur', '--json', '-o', out]);
    assert.is(r.status, 0, r.stderr);
    const line = JSON.parse(r.stdout.trim()) as { nsfw: boolean };
    assert.is(line.nsfw, true);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111' && meta.parameters.extra['Safety checker'] === 'flagged (blur)', JSON.stringify(meta));
    const again = join(dir, 'y.png');
    const r2 = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '2', '-o', again]);
    assert.is(r2.status, 0, r2.stderr);
    assert.equal(readFileSync(again), readFileSync(out), '--from restores the checker and the blur');
  } finally {
    model.remove();
  }
});

run('CLI: a model without the checker is refused in one line before anything runs', () => {
  const dir = tempDir();
  const r = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--steps', '2', '--safety-checker', '-o', join(dir, 'x.png')]);
  assert.is(r.status, 2);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /has no safety_checker\/model\.onnx.*models pull <id> --safety-checker/);
  assert.equal(listFiles(dir), []);
});
run.run();
