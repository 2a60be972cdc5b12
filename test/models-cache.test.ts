import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listModels, removeModel, verifyModel } from '../src/models/cache.js';
import { cacheRoot, modelKey, modelPaths } from '../src/models/cache-layout.js';
import { LocalModelError, ModelLockError } from '../src/models/errors.js';
import { addLocalModel, readLocalModels } from '../src/models/local.js';
import { acquireLock } from '../src/models/lock.js';
import { readManifest } from '../src/models/manifest.js';
import { pullModel } from '../src/models/pull.js';
import type { Registry } from '../src/models/registry.js';
import { fakeHub, tempDir, type FakeHub } from './helpers/hub-server.js';

const REPO = 'test-org/tiny';

async function rejects(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

interface Fixture extends FakeHub {
  /** The same home and registry, for list/rm/verify. */
  cache: { home: string; registry: Registry };
}

async function fixture(): Promise<Fixture> {
  const hub = await fakeHub({ repo: REPO, files: { 'text_encoder/model.onnx': 4000, 'unet/model.onnx': 8000, 'vae_decoder/model.onnx': 2000, 'vae_encoder/model.onnx': 2000 } });
  return { ...hub, cache: { home: hub.home, registry: hub.registry } };
}

test('cache root: DIFFUSE_HOME, then XDG / Library/Caches / LOCALAPPDATA', () => {
  assert.is(cacheRoot({ DIFFUSE_HOME: '/data/diffuse' }, 'linux', '/home/u'), '/data/diffuse');
  assert.is(cacheRoot({}, 'linux', '/home/u'), '/home/u/.cache/diffuse');
  assert.is(cacheRoot({ XDG_CACHE_HOME: '/xdg' }, 'linux', '/home/u'), '/xdg/diffuse');
  assert.is(cacheRoot({ XDG_CACHE_HOME: 'relative' }, 'linux', '/home/u'), '/home/u/.cache/diffuse');
  assert.is(cacheRoot({}, 'darwin', '/Users/u'), '/Users/u/Library/Caches/diffuse');
  assert.is(cacheRoot({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Local\\diffuse\\cache');
  assert.is(cacheRoot({}, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\AppData\\Local\\diffuse\\cache');
});

test('one folder per repo@revision, sanitised and collision-free', () => {
  assert.is(modelKey('stable-diffusion-v1-5/stable-diffusion-v1-5', 'onnx'), 'stable-diffusion-v1-5--stable-diffusion-v1-5@onnx');
  const pr = modelKey('org/repo', 'refs/pr/1');
  assert.match(pr, /^org--repo@refs_pr_1-[0-9a-f]{8}$/);
  assert.is.not(pr, modelKey('org/repo', 'refs_pr_1'));
  assert.not.ok(pr.includes('/'));
});

test('lock: exclusive, waits, times out, and a dead holder\'s lock is taken over', async () => {
  const tmp = await tempDir('lock');
  try {
    const path = join(tmp, 'lock');
    const first = await acquireLock(path);
    const busy = await rejects(acquireLock(path, { waitMs: 0 }));
    assert.instance(busy, ModelLockError);
    assert.match(busy.message, new RegExp(`process ${process.pid}`));

    let waited = false;
    const second = acquireLock(path, { pollMs: 5, onWait: () => (waited = true) });
    await new Promise((r) => setTimeout(r, 30));
    await first.release();
    await (await second).release();
    assert.ok(waited);
    assert.not.ok(existsSync(path));

    // A lock left by a process that no longer exists (pid far above any real one) is stale at once.
    await writeFile(path, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), token: 'dead', since: '' }));
    const taken = await acquireLock(path, { waitMs: 0 });
    assert.not.equal(JSON.parse(await readFile(path, 'utf8')).token, 'dead');
    await taken.release();

    // An untouched lock of another host is stale only after staleMs.
    await writeFile(path, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'old', since: '' }));
    assert.instance(await rejects(acquireLock(path, { waitMs: 0, staleMs: 60_000 })), ModelLockError);
    const old = new Date(Date.now() - 120_000);
    await utimes(path, old, old);
    await (await acquireLock(path, { waitMs: 0, staleMs: 60_000 })).release();
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('lock: the holder learns when its lock was taken away', async () => {
  const tmp = await tempDir('lock');
  try {
    const path = join(tmp, 'lock');
    const held = await acquireLock(path, { staleMs: 40 });
    await writeFile(path, JSON.stringify({ pid: process.pid, host: hostname(), token: 'thief', since: '' }));
    for (let i = 0; i < 100 && !held.lost.aborted; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(held.lost.aborted);
    assert.instance(held.lost.reason, ModelLockError);
    await held.release();
    assert.ok(existsSync(path), 'release never deletes a lock it does not own');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('list: sizes, complete tasks, partial bytes, registry ids, local folders', async () => {
  const f = await fixture();
  try {
    assert.equal(await listModels(f.cache), { cached: [], local: [] });
    const pulled = await pullModel('tiny', f.base);
    const { snapshot } = modelPaths(f.home, REPO, 'main');
    await writeFile(join(snapshot, 'vae_encoder.part'), Buffer.alloc(77));
    const { cached } = await listModels(f.cache);
    assert.is(cached.length, 1);
    const model = cached[0]!;
    assert.is(model.key, modelKey(REPO, 'main'));
    assert.equal(model.ids, ['tiny']);
    assert.is(model.files, pulled.files.length);
    assert.is(model.bytes, pulled.files.reduce((s, x) => s + x.size, 0));
    assert.is(model.partialBytes, 77);
    assert.equal(model.tasks, ['txt2img']);
    assert.is(model.commit, f.server.commitOf(REPO, 'main'));
    await pullModel('tiny', { ...f.base, task: 'inpaint' });
    assert.equal((await listModels(f.cache)).cached[0]!.tasks, ['txt2img', 'img2img', 'inpaint']);
  } finally {
    await f.done();
  }
});

test('verify: re-hashes, names tampered and missing files; --fix removes them for the next pull', async () => {
  const f = await fixture();
  try {
    const { dir } = await pullModel('tiny', f.base);
    const clean = await verifyModel('tiny', f.cache);
    assert.equal(clean.problems, []);
    assert.is(clean.ok.length, 8);

    const onnx = join(dir, 'unet/model.onnx');
    const bytes = await readFile(onnx);
    bytes[10]! ^= 1;
    await writeFile(onnx, bytes);
    await rm(join(dir, 'vae_decoder/model.onnx'));
    await writeFile(join(dir, 'tokenizer/merges.txt'), 'short');
    const report = await verifyModel('tiny', f.cache);
    assert.equal(report.problems, [
      { path: 'tokenizer/merges.txt', problem: 'size' },
      { path: 'unet/model.onnx', problem: 'sha256' },
      { path: 'vae_decoder/model.onnx', problem: 'missing' },
    ]);

    await verifyModel('tiny', { ...f.cache, fix: true });
    assert.not.ok(existsSync(onnx));
    const manifest = await readManifest(modelPaths(f.home, REPO, 'main').manifest);
    assert.is(manifest!.files.length, 5);
    await pullModel('tiny', f.base);
    assert.equal((await verifyModel('tiny', f.cache)).problems, []);
  } finally {
    await f.done();
  }
});

test('verify and rm refuse while another process holds the model', async () => {
  const f = await fixture();
  try {
    await pullModel('tiny', f.base);
    const lock = await acquireLock(modelPaths(f.home, REPO, 'main').lock);
    try {
      assert.instance(await rejects(verifyModel('tiny', f.cache)), ModelLockError);
      assert.instance(await rejects(removeModel('tiny', f.cache)), ModelLockError);
    } finally {
      await lock.release();
    }
  } finally {
    await f.done();
  }
});

test('rm deletes a cached model; for a local id it forgets the name and keeps the folder', async () => {
  const f = await fixture();
  try {
    await pullModel('tiny', f.base);
    const removed = await removeModel('tiny', f.cache);
    assert.equal(removed, { kind: 'cache', path: modelPaths(f.home, REPO, 'main').base, derived: [] });
    assert.not.ok(existsSync(removed.path));
    assert.ok(existsSync(join(f.home, 'models')));

    const folder = join(f.tmp, 'mine');
    await mkdir(folder);
    await writeFile(join(folder, 'model_index.json'), '{}');
    await addLocalModel(f.home, f.registry, folder, 'mine');
    assert.equal(await removeModel('mine', f.cache), { kind: 'local', path: folder });
    assert.ok(existsSync(folder));
    assert.equal(await readLocalModels(f.home), {});
    await rejects(removeModel('tiny', f.cache));
  } finally {
    await f.done();
  }
});

test('add: validates the folder and the id, never shadows a registry id', async () => {
  const f = await fixture();
  try {
    const folder = join(f.tmp, 'mine');
    await mkdir(folder);
    const noIndex = await rejects(addLocalModel(f.home, f.registry, folder, 'mine'));
    assert.instance(noIndex, LocalModelError);
    assert.match(noIndex.message, /model_index\.json/);
    await writeFile(join(folder, 'model_index.json'), '{}');
    for (const id of ['tiny', '../x', 'A B', 'a/b']) {
      const err = await rejects(addLocalModel(f.home, f.registry, folder, id));
      assert.instance(err, LocalModelError, id);
      assert.is((err as LocalModelError).exitCode, 2);
    }
    assert.instance(await rejects(addLocalModel(f.home, f.registry, join(f.tmp, 'absent'), 'x')), LocalModelError);
    await addLocalModel(f.home, f.registry, folder, 'mine');
    assert.instance(await rejects(addLocalModel(f.home, f.registry, folder, 'mine')), LocalModelError);
    await addLocalModel(f.home, f.registry, folder, 'mine', { force: true });
    const { local } = await listModels(f.cache);
    assert.equal(local.map((m) => [m.id, m.path]), [['mine', folder]]);
  } finally {
    await f.done();
  }
});

test.run();
