import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fuseAttention } from '../src/onnx/fuse-attention.js';
import { parseSafetensors } from '../src/text/safetensors.js';
import { readEmbedding } from '../src/text/embeddings.js';
import { ROOT, TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

/**
 * `diffuse embed-train` as a user runs it: a run on the tiny model writes an embedding every tool
 * reads (single tensor emb_params, metadata) that changes generation; Ctrl-C saves a state
 * from which --resume ends on the same vectors, bit for bit, as an uninterrupted run; and bad
 * input is one line with the right exit code and nothing half-written.
 */
const IMAGES = join(FIXTURES, 'train/images');
const TOKEN = '<tiny-cat>';
const base = ['embed-train', '-q', '--model', TINY_SD, '--images', IMAGES, '--token', TOKEN, '--init-word', 'cat', '--seed', '7', '--threads', '1', '--lr', '0.05'];
const work = tempDir('diffuse-train-cli-');

function oneLine(r: { status: number; stderr: string }, status: number, pattern: RegExp): void {
  const lines = r.stderr.trim().split('\n');
  assert.is(r.status, status, r.stderr);
  assert.is(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
}

test('a run writes <token>.safetensors: emb_params [vectors, width] with metadata, read back as trained', () => {
  const out = join(work, 'run');
  const r = diffuse([...base, '--vectors', '2', '--steps', '20', '--save-every', '10', '-o', out]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), join(out, `${TOKEN}.safetensors`));
  assert.equal(listFiles(out), [`${TOKEN}-10.safetensors`, `${TOKEN}.safetensors`, `${TOKEN}.train-state.json`]);
  const file = parseSafetensors(new Uint8Array(readFileSync(join(out, `${TOKEN}.safetensors`))));
  assert.equal([...file.tensors.keys()], ['emb_params']);
  assert.equal(file.tensors.get('emb_params')!.shape, [2, 32]);
  assert.is(file.metadata.token, TOKEN);
  assert.is(file.metadata.vectors, '2');
  assert.is(file.metadata.steps, '20');
  assert.match(file.metadata.base_model_hash!, /^[0-9a-f]{10}$/, "A1111's model hash of the base model");
  const emb = readEmbedding(join(out, `${TOKEN}.safetensors`));
  assert.is(emb.count, 2);
  assert.is(emb.name, TOKEN);
});

test('the trained embedding changes what txt2img makes from a prompt that uses it', () => {
  const out = join(work, 'run');
  const early = join(work, 'early');
  mkdirSync(early);
  copyFileSync(join(out, `${TOKEN}-10.safetensors`), join(early, `${TOKEN}.safetensors`));
  const gen = (dir: string, name: string) => {
    const r = diffuse(['txt2img', `a photo of a ${TOKEN}`, '--model', TINY_SD, '--embeddings-dir', dir, '--seed', '1', '--steps', '4', '-o', join(work, name), '-q']);
    assert.is(r.status, 0, r.stderr);
    return readFileSync(join(work, name));
  };
  const final = gen(out, 'final.png');
  assert.not.equal(final, gen(early, 'early.png'), 'step 10 and step 20 vectors paint different pictures');
  assert.match(final.toString('latin1'), /TI hashes: "<tiny-cat>: [0-9a-f]{12}"/, 'the image records the embedding');
});

function interruptedRun(args: string[], when: RegExp): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/diffuse.js'), ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', DIFFUSE_HOME: join(work, 'home') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && when.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stderr }));
  });
}

test('Ctrl-C saves a state; --resume ends on the same vectors as an uninterrupted run, bit for bit', async () => {
  const whole = join(work, 'whole');
  const parted = join(work, 'parted');
  const args = [...base, '--steps', '30', '--save-every', '0', '--batch-size', '2', '--gradient-accumulation', '2', '--lr-schedule', 'linear', '--lr-warmup', '5'];
  assert.is(diffuse([...args, '-o', whole], { env: { DIFFUSE_HOME: join(work, 'home') } }).status, 0);
  const stopped = await interruptedRun([...args.filter((a) => a !== '-q'), '-o', parted], /step 10\/30/);
  assert.is(stopped.status, 130, stopped.stderr);
  assert.match(stopped.stderr, /interrupted after step \d+: .* continue with --resume/);
  assert.not.ok(existsSync(join(parted, `${TOKEN}.safetensors`)), 'no final embedding yet');
  const step = Number(/interrupted after step (\d+)/.exec(stopped.stderr)![1]);
  assert.ok(step >= 10 && step < 30);
  assert.ok(existsSync(join(parted, `${TOKEN}-${step}.safetensors`)), 'the checkpoint of the step reached');
  const resumed = diffuse([...args.filter((a, i) => a !== '--seed' && args[i - 1] !== '--seed'), '-o', parted, '--resume'], { env: { DIFFUSE_HOME: join(work, 'home') } });
  assert.is(resumed.status, 0, resumed.stderr);
  const a = readEmbedding(join(whole, `${TOKEN}.safetensors`)).vectors;
  const b = readEmbedding(join(parted, `${TOKEN}.safetensors`)).vectors;
  assert.equal(Array.from(b), Array.from(a));
});

test('--resume refuses other settings and a missing state', () => {
  const parted = join(work, 'parted');
  oneLine(diffuse([...base, '--steps', '40', '--resume', '--batch-size', '1', '-o', parted]), 2, /--resume: the saved run used another \w+ \(/);
  oneLine(diffuse([...base, '--resume', '-o', join(work, 'nothing-here')]), 2, /--resume: no training state at .*train-state\.json/);
});

test('hostile inputs: one line, the right exit code, no embedding written', () => {
  const empty = join(work, 'empty');
  mkdirSync(empty);
  const notes = join(work, 'notes');
  mkdirSync(notes);
  writeFileSync(join(notes, 'readme.txt'), 'not a picture');
  const broken = join(work, 'broken');
  cpSync(IMAGES, broken, { recursive: true });
  writeFileSync(join(broken, 'zz-truncated.png'), readFileSync(join(IMAGES, 'a-rgb.png')).subarray(0, 100));
  const out = join(work, 'hostile-out');
  const run = (extra: string[]) => diffuse([...base.filter((a) => a !== IMAGES && a !== '--images'), ...extra, '--steps', '2', '-o', out]);
  oneLine(run(['--images', empty]), 2, /holds no pictures/);
  oneLine(run(['--images', notes]), 2, /holds no pictures/);
  oneLine(run(['--images', join(work, 'missing')]), 2, /cannot read the folder .*no such folder/);
  oneLine(run(['--images', broken]), 2, /zz-truncated\.png is not a picture diffuse can read/);
  oneLine(diffuse(['embed-train', '-q', '--model', TINY_SD, '--images', IMAGES, '--token', 'cat', '-o', out]), 2, /already contains the token cat/);
  oneLine(diffuse(['embed-train', '-q', '--model', TINY_SD, '--images', IMAGES, '-o', out]), 2, /missing --token/);
  oneLine(diffuse([...base, '--lr', 'fast', '-o', out]), 2, /--lr: 'fast' is not a positive learning rate/);
  oneLine(diffuse([...base, '--lr', '0.005:100, 1e-3', '--lr-schedule', 'cosine', '-o', out]), 2, /A1111 rate schedule: it cannot be combined/);
  assert.not.ok(existsSync(out) && listFiles(out).length > 0, 'nothing written');
  const file = join(work, 'a-file');
  writeFileSync(file, '');
  oneLine(diffuse([...base, '--steps', '2', '-o', join(file, 'sub')]), 2, /--output .* cannot be written/);
});

test('an existing embedding is not replaced without --overwrite', () => {
  const out = join(work, 'run');
  const before = readFileSync(join(out, `${TOKEN}.safetensors`));
  oneLine(diffuse([...base, '--steps', '2', '-o', out]), 2, /exists; pass --overwrite/);
  assert.equal(readFileSync(join(out, `${TOKEN}.safetensors`)), before);
});

test('a model the autodiff cannot differentiate (fused attention) is refused by name, nothing written', () => {
  const model = join(work, 'fused-model');
  cpSync(TINY_SD, model, { recursive: true });
  writeFileSync(join(model, 'unet/model.onnx'), fuseAttention(new Uint8Array(readFileSync(join(TINY_SD, 'unet/model.onnx')))).model);
  const out = join(work, 'fused-out');
  const r = diffuse(['embed-train', '-q', '--model', model, '--images', IMAGES, '--token', TOKEN, '--init-word', 'cat', '--steps', '2', '-o', out]);
  oneLine(r, 1, /cannot train on this model's UNet: .*MultiHeadAttention/);
  assert.equal(existsSync(out) ? listFiles(out) : [], []);
});

test.run();
