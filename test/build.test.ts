import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { manifestAssets } from '../src/build/assets.js';
import { readManifest } from '../src/build/manifest.js';
import { UsageError } from '../src/errors.js';
import { ROOT, TINY_SD, diffuse, listFiles } from './helpers/cli.js';
import { scratch } from './helpers/scratch.js';

/** diffuse build on tiny-sd: a manifest of six outputs, its lock, --check, shards and lock merge, interrupts, hostile manifests. */
const test = suite('build');
const temp = scratch(test);

const SIX = `
vars:
  style: watercolor
  subject: a fox, {{style}}
defaults:
  model: ./tiny-sd
  steps: 2
  sampler: euler
  width: 32
  height: 32
outputs:
  img/fox.png:
    prompt: "{{subject}}"
    seed: 1
  img/owl.png:
    prompt: an owl, {{style}}
    seed: 2
    cfgScale: 4
  "img/car-{{color}}.webp":
    prompt: a {{color}} car
    seed: 3
    matrix:
      color: [red, blue]
    post: { quality: 90 }
  img/thumb.jpg:
    prompt: a lighthouse
    seed: 4
    post: { resize: 24x16, format: jpeg }
  img/repaint.png:
    command: img2img
    prompt: a red house
    initImage: inputs/house.png
    strength: 0.6
    seed: 5
`;
const SIX_PATHS = ['img/car-blue.webp', 'img/car-red.webp', 'img/fox.png', 'img/owl.png', 'img/repaint.png', 'img/thumb.jpg'];

/** A project folder: the manifest, the tiny model linked in, and a picture to repaint. */
async function project(manifest = SIX): Promise<string> {
  const dir = temp('diffuse-build-');
  symlinkSync(TINY_SD, join(dir, 'tiny-sd'));
  writeFileSync(join(dir, 'assets.yaml'), manifest);
  mkdirSync(join(dir, 'inputs'));
  const pixels = Buffer.alloc(32 * 32 * 3, 0).map((_, i) => (i * 37) % 251);
  await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(join(dir, 'inputs/house.png'));
  return dir;
}

interface Event {
  event: string;
  path?: string;
  reason?: string;
}
const events = (stdout: string): Event[] => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
const built = (stdout: string): string[] => events(stdout).filter((e) => e.event === 'built').map((e) => e.path!).sort();

function build(dir: string, args: string[] = []) {
  return diffuse(['build', '--json', ...args], { cwd: dir });
}

test('six outputs: built once; a second run makes none; one edited prompt or input makes one; --check fails on a stale output and passes after', async () => {
  const dir = await project();
  const first = build(dir);
  assert.is(first.status, 0, first.stderr);
  assert.equal(built(first.stdout), SIX_PATHS);
  const lock = JSON.parse(readFileSync(join(dir, 'assets.lock.json'), 'utf8')) as { assets: Record<string, { sha256: string; provider: string }> };
  assert.equal(Object.keys(lock.assets), SIX_PATHS);
  for (const path of SIX_PATHS) assert.is(lock.assets[path]!.sha256, sha256(readFileSync(join(dir, path))), path);
  assert.is((await sharp(join(dir, 'img/thumb.jpg')).metadata()).width, 24);

  const again = build(dir);
  assert.is(again.status, 0, again.stderr);
  assert.equal(built(again.stdout), []);
  assert.is(diffuse(['build', '--check'], { cwd: dir }).status, 0);

  writeFileSync(join(dir, 'assets.yaml'), SIX.replace('an owl, {{style}}', 'an owl at night, {{style}}'));
  const check = diffuse(['build', '--check'], { cwd: dir });
  assert.is(check.status, 1, check.stderr);
  assert.is(check.stdout, 'stale img/owl.png: its settings, prompt or inputs changed\n');
  assert.match(check.stderr, /1 of 6 outputs are stale or missing/);
  assert.equal(built(build(dir).stdout), ['img/owl.png']);
  assert.is(diffuse(['build', '--check'], { cwd: dir }).status, 0);

  // The picture an output reads counts by its bytes; a deleted output is missing.
  await sharp(Buffer.alloc(32 * 32 * 3, 90), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(join(dir, 'inputs/house.png'));
  cpSync(join(dir, 'img/fox.png'), join(dir, 'fox-before.png'));
  writeFileSync(join(dir, 'img/fox.png'), 'not the image');
  const changed = diffuse(['build', '--check'], { cwd: dir });
  assert.is(changed.stdout, 'stale img/fox.png: the file differs from the one the lock records\nstale img/repaint.png: its settings, prompt or inputs changed\n');
  assert.equal(built(build(dir).stdout), ['img/fox.png', 'img/repaint.png']);
  assert.ok(readFileSync(join(dir, 'img/fox.png')).equals(readFileSync(join(dir, 'fox-before.png'))), 'the same image again');
});

test('shards 0/3, 1/3, 2/3 and lock merge equal the unsharded build byte for byte', async () => {
  const whole = await project();
  assert.is(build(whole).status, 0);
  const merged = temp('diffuse-merge-');
  const locks: string[] = [];
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = await project();
    const r = build(dir, ['--shard', `${i}/3`]);
    assert.is(r.status, 0, r.stderr);
    made.push(...built(r.stdout));
    for (const path of built(r.stdout)) assert.ok(readFileSync(join(dir, path)).equals(readFileSync(join(whole, path))), path);
    locks.push(join(dir, 'assets.lock.json'));
  }
  assert.equal(made.sort(), SIX_PATHS, 'every output in exactly one shard');
  const out = join(merged, 'assets.lock.json');
  const r = diffuse(['lock', 'merge', ...locks, '-o', out]);
  assert.is(r.status, 0, r.stderr);
  assert.ok(readFileSync(out).equals(readFileSync(join(whole, 'assets.lock.json'))), 'the merged lock is the unsharded one');
  const missing = diffuse(['lock', 'merge', locks[0]!, locks[2]!, '-o', join(merged, 'partial.json')]);
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /shard 1\/3 missing/);
  assert.equal(listFiles(merged), ['assets.lock.json']);

  // Each output is the image its command makes with the same settings, byte for byte.
  const txt = diffuse(['txt2img', 'an owl, watercolor', '--model', TINY_SD, '--steps', '2', '--sampler', 'euler', '-W', '32', '-H', '32', '--seed', '2', '--cfg-scale', '4', '-q', '-o', join(merged, 'owl.png')]);
  assert.is(txt.status, 0, txt.stderr);
  assert.ok(readFileSync(join(merged, 'owl.png')).equals(readFileSync(join(whole, 'img/owl.png'))));
  const img = diffuse(['img2img', 'a red house', '-i', join(whole, 'inputs/house.png'), '--strength', '0.6', '--model', TINY_SD, '--steps', '2', '--sampler', 'euler', '-W', '32', '-H', '32', '--seed', '5', '-q', '-o', join(merged, 'repaint.png')]);
  assert.is(img.status, 0, img.stderr);
  assert.ok(readFileSync(join(merged, 'repaint.png')).equals(readFileSync(join(whole, 'img/repaint.png'))));

  // A lock made on another provider says so, and keeps the output.
  const lockPath = join(whole, 'assets.lock.json');
  writeFileSync(lockPath, readFileSync(lockPath, 'utf8').replace('"provider": "cpu"', '"provider": "cuda"'));
  const check = diffuse(['build', '--check'], { cwd: whole });
  assert.is(check.status, 0, check.stderr);
  assert.match(check.stderr, /note: img\/car-blue\.webp: made on cuda, this build runs on cpu: .*byte-equal only on one provider/);
});

test('--jobs 2: two shard processes whose joined lock and files equal the one-process build byte for byte; a second run makes none', async () => {
  const whole = await project();
  assert.is(build(whole).status, 0);
  const dir = await project();
  const r = build(dir, ['--jobs', '2']);
  assert.is(r.status, 0, r.stderr);
  assert.equal(built(r.stdout), SIX_PATHS);
  const plans = events(r.stdout).filter((e) => e.event === 'plan') as (Event & { shard?: string })[];
  assert.equal(plans.map((e) => e.shard).sort(), ['0/2', '1/2']);
  for (const path of SIX_PATHS) assert.ok(readFileSync(join(dir, path)).equals(readFileSync(join(whole, path))), path);
  assert.ok(readFileSync(join(dir, 'assets.lock.json')).equals(readFileSync(join(whole, 'assets.lock.json'))), 'the joined lock is the one-process lock');
  assert.equal(listFiles(dir).filter((f) => f.includes('.diffuse-jobs-')), [], 'no shard lock left behind');
  const again = build(dir, ['--jobs', '2']);
  assert.is(again.status, 0, again.stderr);
  assert.equal(built(again.stdout), []);
  for (const [args, says] of [
    [['--jobs', '2', '--check'], /--check builds nothing: leave --jobs out/],
    [['--jobs', '2', '--shard', '0/2'], /leave --shard out/],
    [['--jobs', '0'], /--jobs must be a whole number from 1 to 64/],
  ] as const) {
    const bad = build(dir, [...args]);
    assert.is(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, says);
  }
});

test('interrupted (SIGTERM): no half file, the lock holds what was written, the next run makes the rest', async () => {
  const dir = await project(SIX.replace('steps: 2', 'steps: 12'));
  const child = spawn(process.execPath, [join(ROOT, 'bin/diffuse.js'), 'build', '--json'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let signalled = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    // Once: a second signal would quit at once (as a second Ctrl-C does).
    if (!signalled && stdout.includes('"event":"built"')) signalled = child.kill('SIGTERM');
  });
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.is(status, 130);
  const first = built(stdout);
  assert.is(first.length, 1, stdout);
  assert.equal(listFiles(dir).filter((f) => f.startsWith('img/') || f.includes('.tmp')), first, 'only whole files');
  const lock = JSON.parse(readFileSync(join(dir, 'assets.lock.json'), 'utf8')) as { assets: Record<string, unknown> };
  assert.equal(Object.keys(lock.assets), first);
  const rest = build(dir);
  assert.is(rest.status, 0, rest.stderr);
  assert.equal(built(rest.stdout), SIX_PATHS.filter((p) => !first.includes(p)));
});

test('hostile manifests: one line naming the problem, exit 2, nothing written', async () => {
  const cases: [string, RegExp][] = [
    ['outputs: {"../x.png": {prompt: a, seed: 1}}', /outputs\.\.\.\/x\.png \(the path\): \.\.\/x\.png is outside the project/],
    ['outputs: {"/tmp/x.png": {prompt: a, seed: 1}}', /\/tmp\/x\.png is absolute/],
    ['outputs: {"link/x.png": {prompt: a, seed: 1}}', /leads outside the project through a symbolic link/],
    ['outputs: {"x.png": {prompt: a, seed: 1, command: img2img, initImage: ../../etc/passwd}}', /initImage: \.\.\/\.\.\/etc\/passwd is outside the project/],
    ['outputs: {"x.png": {prompt: a, seed: 1, stpes: 3}}', /outputs\.x\.png: unknown option 'stpes'/],
    ['outputs: {"x.png": {prompt: a, seed: 1, cfg-scale: 3}}', /unknown option 'cfg-scale' \(did you mean 'cfgScale'\?\)/],
    ['outputs: {"x.png": {prompt: a, seed: 1, post: {size: 3}}}', /post: unknown key 'size' \(known: resize, format, quality\)/],
    ['outputs: {"x.png": {prompt: a, seed: 1, output: y.png}}', /'output' is not taken in a manifest/],
    ['outptus: {}', /unknown key 'outptus' at the top/],
    ['vars: {a: "{{b}}", b: "x{{a}}"}\noutputs: {"x.png": {prompt: "{{a}}", seed: 1}}', /cycle: a -> b -> a/],
    ['outputs: {"x.png": {prompt: "{{nope}}", seed: 1}}', /\{\{nope\}\} is not a variable/],
    ['outputs: {"x.png": {prompt: a}}', /no seed/],
    ['outputs: {"x.gif": {prompt: a, seed: 1}}', /must end in \.png, \.jpg, \.webp or \.avif/],
    ['outputs: {"x-{{c}}.png": {prompt: a, seed: 1, matrix: {c: [1, 2], d: [3, 4]}}}', /makes x-1\.png, as .* does/],
    ['outputs: {"x.png": {prompt: a, seed: 1}, "x.png": {prompt: b, seed: 1}}', /duplicated mapping key/],
    ['outputs: {"x.png": {prompt: a, seed: 1, steps: 0}}', /steps must be a whole number/],
  ];
  for (const [i, [manifest, pattern]] of cases.entries()) {
    const dir = temp('diffuse-hostile-');
    symlinkSync(temp('diffuse-elsewhere-'), join(dir, 'link'));
    writeFileSync(join(dir, 'assets.yaml'), manifest);
    // Each case is refused while reading the manifest; two go through the CLI for the exit code and the one line.
    if (i % 8 === 0) {
      const r = diffuse(['build'], { cwd: dir });
      assert.is(r.status, 2, `${manifest}: ${r.stderr}`);
      assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, pattern);
    } else {
      const refused = await readManifest(join(dir, 'assets.yaml')).then((m) => manifestAssets(m, dir)).then(() => undefined, (err: unknown) => err);
      assert.instance(refused, UsageError, manifest);
      assert.match((refused as Error).message, pattern);
    }
    assert.equal(listFiles(dir), ['assets.yaml'], manifest);
  }
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

test.run();
