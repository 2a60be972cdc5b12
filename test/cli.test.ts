import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { probeProvider } from '../src/onnx/probe.js';
import { TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';

const base = ['--model', TINY_SD, '--steps', '3', '--quiet'];

/** One line on stderr, no stack trace, the expected exit code, nothing written. */
function assertCleanFailure(args: string[], status: number, pattern: RegExp, out: string): void {
  const r = diffuse(args);
  assert.is(r.status, status, `exit code for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(listFiles(out), [], 'no file left behind');
}

test('txt2img writes a PNG whose parameters chunk info reads back', () => {
  const out = tempDir();
  const file = join(out, 'a.png');
  const r = diffuse(['txt2img', 'a lighthouse at dusk, (oil painting)', ...base, '--seed', '1234', '-n', 'blurry', '-o', file]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), file);
  const png = readFileSync(file);
  const meta = readGenerationMetadata(png);
  assert.is(meta.kind, 'a1111');
  if (meta.kind !== 'a1111') return;
  assert.is(meta.parameters.prompt, 'a lighthouse at dusk, (oil painting)');
  assert.is(meta.parameters.negativePrompt, 'blurry');
  assert.is(meta.parameters.seed, 1234);
  assert.is(meta.parameters.steps, 3);
  assert.is(meta.parameters.width, 32);
  assert.is(meta.parameters.height, 32);
  assert.is(meta.parameters.sampler, 'Euler a');
  const info = diffuse(['info', file]);
  assert.is(info.status, 0, info.stderr);
  assert.is(info.stdout.trim(), meta.infotext);
  const json = JSON.parse(diffuse(['info', file, '--json']).stdout) as { parameters: { seed: number } };
  assert.is(json.parameters.seed, 1234);
  rmSync(out, { recursive: true });
});

test('the PNG is a valid image of the requested size', async () => {
  const out = tempDir();
  const file = join(out, 'wide.png');
  const r = diffuse(['txt2img', 'wide', ...base, '--seed', '7', '-W', '48', '-H', '32', '-o', file]);
  assert.is(r.status, 0, r.stderr);
  const m = await sharp(file).metadata();
  assert.is(m.format, 'png');
  assert.is(m.width, 48);
  assert.is(m.height, 32);
  const stats = await sharp(file).stats();
  assert.ok(stats.channels.some((c) => c.stdev > 1), 'not a constant image');
  rmSync(out, { recursive: true });
});

test('the same seed gives byte-identical files; another seed differs', () => {
  const out = tempDir();
  const run = (seed: string, name: string) => {
    const r = diffuse(['txt2img', 'same', ...base, '--seed', seed, '-o', join(out, name)]);
    assert.is(r.status, 0, r.stderr);
    return readFileSync(join(out, name));
  };
  const a = run('99', 'a.png');
  const b = run('99', 'b.png');
  const c = run('100', 'c.png');
  assert.ok(a.equals(b), 'same seed, same bytes');
  assert.not.ok(a.equals(c), 'another seed, other bytes');
  rmSync(out, { recursive: true });
});

test('a folder output names images from the template and never clobbers', () => {
  const out = tempDir();
  const args = ['txt2img', 'cat', ...base, '--seed', '5', '--batch-size', '2', '-o', out];
  const first = diffuse(args);
  assert.is(first.status, 0, first.stderr);
  assert.equal(listFiles(out), ['5-cat.png', '6-cat.png']);
  const again = diffuse(args);
  assert.is(again.status, 0, again.stderr);
  assert.is(listFiles(out).length, 4, 'a second run adds files instead of replacing');
  rmSync(out, { recursive: true });
});

test('an existing file is kept unless --overwrite', () => {
  const out = tempDir();
  const file = join(out, 'keep.png');
  writeFileSync(file, 'precious');
  const r = diffuse(['txt2img', 'x', ...base, '--seed', '1', '-o', file]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /already exists/);
  assert.is(readFileSync(file, 'utf8'), 'precious');
  const o = diffuse(['txt2img', 'x', ...base, '--seed', '1', '-o', file, '--overwrite']);
  assert.is(o.status, 0, o.stderr);
  assert.is(readFileSync(file).subarray(1, 4).toString(), 'PNG');
  assert.equal(listFiles(out), ['keep.png']);
  rmSync(out, { recursive: true });
});

test('--json prints one record per image for scripts', () => {
  const out = tempDir();
  const r = diffuse(['txt2img', 'json', ...base, '--seed', '11', '--batch-size', '2', '--json', '-o', out]);
  assert.is(r.status, 0, r.stderr);
  const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; seed: number; parameters: { steps: number }; timings: { total: number } });
  assert.equal(records.map((x) => x.seed), [11, 12]);
  assert.ok(records.every((x) => x.parameters.steps === 3 && x.timings.total > 0));
  rmSync(out, { recursive: true });
});

test('bad input: one line, usage exit 2, nothing written', () => {
  const out = tempDir();
  const o = ['-o', join(out, 'x.png')];
  assertCleanFailure(['txt2img', 'x', ...base, '--width', '100', ...o], 2, /multiple of 8/, out);
  assertCleanFailure(['txt2img', 'x', ...base, '--steps', '0', ...o], 2, /--steps/, out);
  assertCleanFailure(['txt2img', 'x', ...base, '--cfg-scale', '-1', ...o], 2, /--cfg-scale/, out);
  assertCleanFailure(['txt2img', 'x', ...base, '--sampler', 'nonsense', ...o], 2, /unknown sampler/, out);
  assertCleanFailure(['txt2img', 'x', ...base, '--seed', 'abc', ...o], 2, /--seed/, out);
  assertCleanFailure(['txt2img', 'x', ...base, '--device', 'tpu', ...o], 2, /--device/, out);
  assertCleanFailure(['txt2img', ...base, ...o], 2, /missing the prompt/, out);
  rmSync(out, { recursive: true });
});

test('bad model: one line, exit 2 for a wrong path and 1 for a broken model, nothing written', () => {
  const out = tempDir();
  const o = ['-o', join(out, 'x.png')];
  const models = tempDir('diffuse-model-');
  // A path that does not exist is what the user typed: a usage error. A broken model is runtime.
  assertCleanFailure(['txt2img', 'x', '--model', join(models, 'absent'), ...o], 2, /model folder not found/, out);
  const noUnet = join(models, 'no-unet');
  cpSync(TINY_SD, noUnet, { recursive: true });
  rmSync(join(noUnet, 'unet'), { recursive: true });
  assertCleanFailure(['txt2img', 'x', '--model', noUnet, ...o], 1, /unet\/model\.onnx/, out);
  const corrupt = join(models, 'corrupt');
  cpSync(TINY_SD, corrupt, { recursive: true });
  writeFileSync(join(corrupt, 'unet', 'model.onnx'), 'not a protobuf');
  assertCleanFailure(['txt2img', 'x', '--model', corrupt, ...o], 1, /cannot load .*unet/, out);
  rmSync(models, { recursive: true });
  rmSync(out, { recursive: true });
});

test('a GPU provider that is not installed: one line naming the install command, exit 2', async () => {
  if ((await probeProvider('cuda')).works) return; // a machine with CUDA runs it instead
  const out = tempDir();
  const r = diffuse(['txt2img', 'x', ...base, '--device', 'cuda', '-o', join(out, 'x.png')]);
  assert.is(r.status, 2);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /ONNXRUNTIME_NODE_INSTALL=true node .*install\.js/);
  assert.equal(listFiles(out), []);
});

test('an unwritable output folder fails cleanly', () => {
  const out = tempDir();
  writeFileSync(join(out, 'file'), '');
  const r = diffuse(['txt2img', 'x', ...base, '-o', join(out, 'file', 'sub', 'x.png')]);
  assert.is(r.status, 1, r.stderr);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.equal(listFiles(out), ['file']);
  rmSync(out, { recursive: true });
});

test('info on a file without parameters, and on a missing file', () => {
  const out = tempDir();
  const plain = join(out, 'plain.png');
  const r1 = diffuse(['info', join(out, 'missing.png')]);
  assert.is(r1.status, 2, 'a path that does not exist is a usage error');
  assert.match(r1.stderr, /no such file/);
  return sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } })
    .png()
    .toFile(plain)
    .then(() => {
      const r2 = diffuse(['info', plain]);
      assert.is(r2.status, 1);
      assert.match(r2.stderr, /no generation parameters/);
      rmSync(out, { recursive: true });
    });
});

test.run();
