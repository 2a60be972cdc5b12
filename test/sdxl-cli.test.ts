import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { assembleSdxl, type AssembledModel } from './helpers/assemble-model.js';
import { diffuse, listFiles, tempDir } from './helpers/cli.js';
import { writeDiffusersFolder } from './helpers/synthetic-checkpoint.js';

/**
 * The SDXL refiner from the command line: `--refiner` loads the second model, `--refiner-switch`
 * (A1111's "Switch at") hands the sampling over, and the written image is diffusers' base +
 * refiner reference (test/fixtures/sdxl-pipeline, as test/sdxl-pipeline.test.ts holds the library to); with
 * --control the units steer the base's steps (test/fixtures/sdxl-controlnet's refiner case, as
 * test/sdxl-controlnet-tasks.test.ts holds the library to).
 */
const DIR = join(FIXTURES, 'sdxl-pipeline');
const BASE = join(FIXTURES, 'tiny-sdxl');

interface RefinerCase {
  name: string;
  prompt: string;
  negative_prompt: string;
  guidance_scale: number;
  num_inference_steps: number;
  seed: number;
  width: number;
  height: number;
  switch: number;
  scheduler: { class: string };
  png: string[];
}

const refinerCase = readJson<{ refiner: RefinerCase[] }>(join(DIR, 'cases.json')).refiner.find((c) => c.name === 'euler-0.8')!;
const CONTROL_DIR = join(FIXTURES, 'sdxl-controlnet');
type ControlRefinerCase = Omit<RefinerCase, 'switch'> & { refiner_switch: number; units: { image: string; scale: number; start: number; end: number }[] };
const controlCase = readJson<{ refiner: ControlRefinerCase[] }>(join(CONTROL_DIR, 'cases.json')).refiner.find((c) => c.png?.length)!;

/** The written picture within one 8-bit level of diffusers' PNG on at most 1% of its samples. */
async function assertLooksLike(file: string, expectedPng: string): Promise<void> {
  const written = (await loadImage(file)).rgb.data;
  const expected = (await loadImage(expectedPng)).rgb.data;
  let worst = 0;
  let off = 0;
  written.forEach((v, i) => {
    const d = Math.abs(v - expected[i]!);
    worst = Math.max(worst, d);
    if (d > 0) off++;
  });
  assert.ok(worst <= 1 && off <= written.length / 100, `differs by ${worst} levels on ${off} samples`);
}

const test = suite('SDXL refiner on the command line');
let refiner: AssembledModel;
test.before(() => {
  refiner = assembleSdxl('tiny-sdxl-refiner');
});
test.after(() => {
  refiner.remove();
});

const caseFlags = (c: Omit<RefinerCase, 'switch'>): string[] => [
  c.prompt,
  '-m', BASE,
  '-n', c.negative_prompt,
  '-s', String(c.num_inference_steps),
  '-g', String(c.guidance_scale),
  '--seed', String(c.seed),
  '-W', String(c.width),
  '-H', String(c.height),
  '--sampler', 'euler',
  '--schedule', 'normal',
];

test('txt2img --refiner --refiner-switch 0.8 writes diffusers\' base + refiner image and records the refiner as A1111 does', async () => {
  const out = tempDir();
  const file = join(out, 'refined.png');
  const r = diffuse(['txt2img', ...caseFlags(refinerCase), '--refiner', refiner.dir, '--refiner-switch', String(refinerCase.switch), '-o', file]);
  assert.is(r.status, 0, r.stderr);
  await assertLooksLike(file, join(DIR, refinerCase.png[0]!));
  const meta = readGenerationMetadata(readFileSync(file));
  assert.is(meta.kind, 'a1111');
  if (meta.kind !== 'a1111') return;
  assert.match(meta.parameters.extra.Refiner ?? '', /^diffuse-tiny-sdxl-refiner-\w+ \[[0-9a-f]{10}\]$/);
  assert.is(meta.parameters.extra['Refiner switch at'], '0.8');
  const again = diffuse(['txt2img', '--from', file, '-m', BASE, '-o', join(out, 'again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, /refined with "diffuse-tiny-sdxl-refiner-\w+ \[[0-9a-f]{10}\]" from 0\.8 of the schedule; pass --refiner <that model> --refiner-switch 0\.8/);
  rmSync(out, { recursive: true });
});

test('txt2img --refiner with --control: the unit steers the base to the switch (diffusers\' ControlNet pipeline to denoising_end, the refiner from denoising_start); both recorded', async () => {
  const out = tempDir();
  const file = join(out, 'controlled.png');
  const unit = controlCase.units[0]!;
  const model = writeDiffusersFolder(join(out, 'controlnet-sdxl-tiny'), 'controlnet', { layoutDir: CONTROL_DIR, tokenizers: {} });
  const control = `type=none,image=${join(FIXTURES, 'controlnet-pipeline', unit.image)},model=${model},weight=${unit.scale},start=${unit.start},end=${unit.end}`;
  const r = diffuse(['txt2img', ...caseFlags(controlCase), '--refiner', refiner.dir, '--refiner-switch', String(controlCase.refiner_switch), '--control', control, '-o', file]);
  assert.is(r.status, 0, r.stderr);
  await assertLooksLike(file, join(CONTROL_DIR, controlCase.png[0]!));
  const meta = readGenerationMetadata(readFileSync(file));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  assert.is(meta.parameters.extra['Refiner switch at'], String(controlCase.refiner_switch));
  assert.match(meta.parameters.extra['ControlNet 0'] ?? '', /^Module: none, Model: controlnet-sdxl-tiny \[[0-9a-f]{8}\], Weight: 1\.0, .*Guidance Start: 0\.0, Guidance End: 0\.5,/);
  rmSync(out, { recursive: true });
});

test('--clip-skip 2 on SDXL: unchanged with a1111 and comfy weighting (A1111 and CLIPSetLastLayer(-2) read SDXL\'s own layer), a further layer with none; recorded as A1111 writes it', async () => {
  const out = tempDir();
  const paint = async (name: string, flags: string[]): Promise<{ pixels: Uint8Array; clipSkip: unknown; stderr: string }> => {
    const file = join(out, `${name}.png`);
    const r = diffuse(['txt2img', 'a red house', '-m', BASE, '-s', '2', '--seed', '3', '-W', '32', '-H', '32', ...flags, '-o', file]);
    assert.is(r.status, 0, r.stderr);
    const meta = readGenerationMetadata(readFileSync(file));
    return { pixels: (await loadImage(file)).rgb.data, clipSkip: meta.kind === 'a1111' ? meta.parameters.clipSkip : undefined, stderr: r.stderr };
  };
  const a1111 = await paint('a1111', ['--clip-skip', '2']);
  assert.equal(a1111.pixels, (await paint('plain', [])).pixels, 'A1111 ignores clip skip on SDXL');
  assert.is(a1111.clipSkip, 2, 'Clip skip: 2 recorded');
  assert.match(a1111.stderr, /warning: Clip skip 2 changes nothing on SDXL with --prompt-weighting a1111, as in A1111 .*; --prompt-weighting comfy or none reads a further one\n/);
  assert.equal((await paint('comfy', ['--clip-skip', '2', '--prompt-weighting', 'comfy'])).pixels, (await paint('comfy-1', ['--prompt-weighting', 'comfy'])).pixels);
  assert.not.equal((await paint('none', ['--clip-skip', '2', '--prompt-weighting', 'none'])).pixels, (await paint('none-1', ['--prompt-weighting', 'none'])).pixels);
  rmSync(out, { recursive: true });
});

test('--refiner-switch without --refiner, or out of range, is refused in one line before anything loads', () => {
  const out = tempDir();
  for (const [args, message] of [
    [['--refiner-switch', '0.7'], /--refiner-switch needs --refiner: name the model that takes over/],
    [['--refiner', refiner.dir, '--refiner-switch', '0'], /--refiner-switch must be a number from 0\.01 to 1/],
  ] as const) {
    const r = diffuse(['txt2img', 'a cat', '-m', BASE, '-s', '2', '-W', '32', '-H', '32', ...args, '-o', join(out, 'x.png')]);
    assert.is(r.status, 2, r.stderr);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, message, r.stderr);
  }
  assert.equal(listFiles(out), []);
  rmSync(out, { recursive: true });
});

test.run();
