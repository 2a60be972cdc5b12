import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modelPaths } from '../src/models/cache-layout.js';
import {
  ChecksumMismatchError,
  HubAuthError,
  HubError,
  HubNotFoundError,
  InsufficientDiskSpaceError,
  PullInterruptedError,
  UnsafePathError,
} from '../src/models/errors.js';
import { hubOptionsFromEnv } from '../src/models/hub.js';
import { readManifest } from '../src/models/manifest.js';
import type { PullEvent } from '../src/models/progress.js';
import { pullModel } from '../src/models/pull.js';
import { validateRegistry } from '../src/models/registry.js';
import { fakeHub, listTree, registryJsonFor, rejects, repoFromFolder, type FakeHub, type HubServer, type HubServerOptions } from './helpers/hub-server.js';

/**
 * pull against a local fake Hub (test/helpers/hub-server.ts): no network. Files are random
 * bytes, so every equality below is byte-exact (sha256), not a tolerance.
 */

const REPO = 'test-org/tiny';
const TOKEN = 'hf_test_token';
const BINARIES = {
  'text_encoder/model.onnx': 300_000,
  'unet/model.onnx': 20_000,
  'unet/weights.pb': 1_500_000,
  'unet/diffusion_pytorch_model.safetensors': 50_000,
  'vae_decoder/model.onnx': 200_000,
  'vae_encoder/model.onnx': 150_000,
  'safety_checker/model.onnx': 10_000,
};
const TXT2IMG_FILES = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'text_encoder/model.onnx',
  'tokenizer/merges.txt',
  'tokenizer/vocab.json',
  'unet/config.json',
  'unet/model.onnx',
  'unet/weights.pb',
  'vae_decoder/model.onnx',
];

type Fixture = FakeHub;

const fixture = (server: HubServerOptions = {}, extra?: (server: HubServer, src: string) => Promise<void>): Promise<Fixture> =>
  fakeHub({ repo: REPO, files: BINARIES, server: { token: TOKEN, ...server }, ...(extra ? { extra } : {}) });

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function assertSameBytes(f: Fixture, paths: string[]): Promise<void> {
  const snapshot = modelPaths(f.home, REPO, 'main').snapshot;
  for (const path of paths) {
    const [got, want] = await Promise.all([readFile(join(snapshot, path)), readFile(join(f.src, path))]);
    assert.is(sha256(got), sha256(want), path);
  }
}

/** CDN/resolve requests that served a given repo path. */
const servedRequests = (server: HubServer, path: string) => server.requests.filter((r) => r.path === path && r.status !== 302);


test('pull fetches exactly the txt2img files, verifies them and records a manifest', async () => {
  const f = await fixture();
  try {
    const events: PullEvent[] = [];
    const result = await pullModel('tiny', { ...f.base, onProgress: (e) => events.push(e) });
    const paths = modelPaths(f.home, REPO, 'main');
    assert.is(result.dir, paths.snapshot);
    assert.equal(result.files.map((x) => x.path), TXT2IMG_FILES);
    await assertSameBytes(f, TXT2IMG_FILES);
    // Never the PyTorch copy, the safety checker or the img2img-only encoder.
    for (const skipped of ['unet/diffusion_pytorch_model.safetensors', 'safety_checker/model.onnx', 'vae_encoder/model.onnx']) {
      assert.not.ok(existsSync(join(paths.snapshot, skipped)), skipped);
    }
    const tree = await listTree(paths.snapshot);
    assert.not.ok(tree.some((p) => p.endsWith('.part')), 'no .part left behind');

    const manifest = (await readManifest(paths.manifest))!;
    assert.is(manifest.commit, f.server.commitOf(REPO, 'main'));
    for (const file of manifest.files) {
      assert.is(file.sha256, sha256(await readFile(join(f.src, file.path))), file.path);
      assert.is(file.size, statSync(join(f.src, file.path)).size);
    }
    // Downloads name the commit, so every file comes from the same one.
    const resolves = f.server.requests.filter((r) => r.server === 'hub' && r.url.includes('/resolve/'));
    assert.ok(resolves.every((r) => r.url.includes(`/resolve/${f.server.commitOf(REPO, 'main')}/`)));

    const plan = events.find((e) => e.type === 'plan');
    const total = TXT2IMG_FILES.reduce((sum, p) => sum + statSync(join(f.src, p)).size, 0);
    assert.equal(plan, { type: 'plan', files: TXT2IMG_FILES.length, totalBytes: total, cachedFiles: 0, resumeBytes: 0 });
    const last = events.filter((e) => e.type === 'progress').at(-1);
    assert.ok(last && last.type === 'progress' && last.doneBytes === total && last.totalBytes === total);
    assert.is(events.at(-1)!.type, 'done');

    // A second pull finds everything verified and downloads nothing.
    const before = f.server.requests.length;
    const again = await pullModel('tiny', f.base);
    assert.is(again.downloadedBytes, 0);
    assert.equal(f.server.requests.slice(before).map((r) => r.url.split('?')[0]), [`/api/models/${REPO}/revision/main`]);

    // img2img adds only vae_encoder.
    const before2 = f.server.requests.length;
    await pullModel('tiny', { ...f.base, task: 'img2img' });
    const served = f.server.requests.slice(before2).filter((r) => r.path && r.status !== 302).map((r) => r.path);
    assert.equal(served, ['vae_encoder/model.onnx']);
  } finally {
    await f.done();
  }
});

test('HF_ENDPOINT and HF_TOKEN come from the environment; the token never reaches the CDN', async () => {
  const f = await fixture();
  const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_TOKEN: process.env.HF_TOKEN };
  try {
    process.env.HF_ENDPOINT = `${f.server.endpoint}/`;
    process.env.HF_TOKEN = TOKEN;
    assert.equal(hubOptionsFromEnv(), { endpoint: f.server.endpoint, token: TOKEN });
    const { hub: _unused, ...withoutHub } = f.base;
    await pullModel('tiny', withoutHub);
    const hubRequests = f.server.requests.filter((r) => r.server === 'hub');
    const cdnRequests = f.server.requests.filter((r) => r.server === 'cdn');
    assert.ok(hubRequests.length > 0 && cdnRequests.length > 0);
    assert.ok(hubRequests.every((r) => r.authorization === `Bearer ${TOKEN}`), 'token sent to the Hub');
    assert.ok(cdnRequests.every((r) => r.authorization === undefined), 'token kept from the CDN');
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await f.done();
  }
});

test('gated repo: 401 without a token, 403 with a wrong one, works with the right one', async () => {
  const f = await fixture({}, async (server, src) => server.addRepo({ id: 'test-org/gated', revisions: { main: await repoFromFolder(src) }, gated: true }));
  try {
    const ref = 'hf:test-org/gated';
    const noToken = await rejects(pullModel(ref, f.base));
    assert.instance(noToken, HubAuthError);
    assert.is((noToken as HubAuthError).status, 401);
    assert.match(noToken.message, /gated.*HF_TOKEN/);
    const wrong = await rejects(pullModel(ref, { ...f.base, hub: { endpoint: f.server.endpoint, token: 'hf_wrong' } }));
    assert.instance(wrong, HubAuthError);
    assert.is((wrong as HubAuthError).status, 403);
    const ok = await pullModel(ref, { ...f.base, hub: { endpoint: f.server.endpoint, token: TOKEN } });
    assert.is(ok.files.length, TXT2IMG_FILES.length);
  } finally {
    await f.done();
  }
});

test('unknown repo and unknown revision are clear not-found errors', async () => {
  const f = await fixture();
  try {
    const repo = await rejects(pullModel('hf:test-org/missing', f.base));
    assert.instance(repo, HubError);
    assert.match(repo.message, /test-org\/missing/);
    const rev = await rejects(pullModel('hf:test-org/tiny@nope', f.base));
    assert.instance(rev, HubNotFoundError);
    assert.match(rev.message, /no such revision/);
  } finally {
    await f.done();
  }
});

test('a cut transfer leaves a .part that the next pull resumes with a Range request', async () => {
  const f = await fixture();
  try {
    f.server.setFault('unet/weights.pb', { cutAfter: 600_000 });
    const err = await rejects(pullModel('tiny', { ...f.base, retries: 0 }));
    assert.instance(err, HubError);
    const part = join(modelPaths(f.home, REPO, 'main').snapshot, 'unet/weights.pb.part');
    const partSize = (await stat(part)).size;
    assert.ok(partSize > 0 && partSize <= 600_000, `partial file of ${partSize} bytes`);

    const result = await pullModel('tiny', f.base);
    assert.is(result.files.length, TXT2IMG_FILES.length);
    await assertSameBytes(f, ['unet/weights.pb']);
    const served = servedRequests(f.server, 'unet/weights.pb');
    assert.is(served.length, 2);
    assert.is(served[1]!.range, `bytes=${partSize}-`);
    assert.is(served[1]!.status, 206);
    assert.not.ok(existsSync(part));
  } finally {
    await f.done();
  }
});

test('within one pull, a cut transfer is retried from where it stopped', async () => {
  const f = await fixture();
  try {
    f.server.setFault('text_encoder/model.onnx', { cutAfter: 100_000, times: 2 });
    await pullModel('tiny', f.base);
    await assertSameBytes(f, ['text_encoder/model.onnx']);
    const served = servedRequests(f.server, 'text_encoder/model.onnx');
    assert.is(served.length, 3);
    assert.is(served[0]!.range, undefined);
    assert.ok(served[1]!.range?.startsWith('bytes=') && served[2]!.range?.startsWith('bytes='));
  } finally {
    await f.done();
  }
});

test('a transfer that falls silent is dropped after the idle timeout and resumed', async () => {
  const f = await fixture();
  try {
    f.server.setFault('unet/weights.pb', { cutAfter: 500_000, stall: true });
    await pullModel('tiny', { ...f.base, idleTimeoutMs: 300 });
    await assertSameBytes(f, ['unet/weights.pb']);
    const served = servedRequests(f.server, 'unet/weights.pb');
    assert.is(served.length, 2);
    assert.ok(served[1]!.range?.startsWith('bytes='), 'resumed with Range');
  } finally {
    await f.done();
  }
});

test('a server that ignores Range gets the whole file again, still verified', async () => {
  const f = await fixture();
  try {
    f.server.setFault('unet/weights.pb', { cutAfter: 300_000, ignoreRange: true });
    await pullModel('tiny', f.base);
    await assertSameBytes(f, ['unet/weights.pb']);
    const served = servedRequests(f.server, 'unet/weights.pb');
    assert.is(served.length, 2);
    assert.is(served[1]!.status, 200);
  } finally {
    await f.done();
  }
});

test('a corrupted byte is caught: the file is deleted, never renamed, never recorded', async () => {
  const f = await fixture();
  try {
    f.server.setFault('unet/weights.pb', { corruptByte: 123_456 });
    const err = await rejects(pullModel('tiny', f.base));
    assert.instance(err, ChecksumMismatchError);
    assert.is((err as ChecksumMismatchError).path, 'unet/weights.pb');
    assert.match(err.message, /corrupt.*deleted/);
    const paths = modelPaths(f.home, REPO, 'main');
    assert.not.ok(existsSync(join(paths.snapshot, 'unet/weights.pb')));
    assert.not.ok(existsSync(join(paths.snapshot, 'unet/weights.pb.part')));
    const manifest = await readManifest(paths.manifest);
    assert.not.ok(manifest?.files.some((x) => x.path === 'unet/weights.pb'));
  } finally {
    await f.done();
  }
});

test('a corrupted small git file is caught by its git blob id', async () => {
  const f = await fixture();
  try {
    f.server.setFault('tokenizer/vocab.json', { corruptByte: 2 });
    const err = await rejects(pullModel('tiny', f.base));
    assert.instance(err, ChecksumMismatchError);
    assert.match(err.message, /git blob id/);
  } finally {
    await f.done();
  }
});

test('a server sending more bytes than listed is cut off', async () => {
  const f = await fixture();
  try {
    f.server.setFault('vae_decoder/model.onnx', { extraBytes: 10_000 });
    const err = await rejects(pullModel('tiny', f.base));
    assert.instance(err, HubError);
    assert.match(err.message, /more than the 200000 bytes/);
    assert.not.ok(existsSync(join(modelPaths(f.home, REPO, 'main').snapshot, 'vae_decoder/model.onnx.part')));
  } finally {
    await f.done();
  }
});

test('abort (Ctrl-C) keeps the .part files and the next pull resumes them', async () => {
  const f = await fixture({ chunkBytes: 16_384, chunkDelayMs: 5 });
  try {
    const controller = new AbortController();
    const err = await rejects(
      pullModel('tiny', {
        ...f.base,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.type === 'progress' && e.doneBytes > 400_000) controller.abort();
        },
      }),
    );
    assert.instance(err, PullInterruptedError);
    const snapshot = modelPaths(f.home, REPO, 'main').snapshot;
    const parts = (await listTree(snapshot)).filter((p) => p.endsWith('.part'));
    assert.ok(parts.length > 0, 'partial files kept');
    await pullModel('tiny', f.base);
    await assertSameBytes(f, TXT2IMG_FILES);
    assert.ok(f.server.requests.some((r) => r.range !== undefined && r.status === 206), 'resumed with Range');
  } finally {
    await f.done();
  }
});

test('two pulls of one model in one process: one waits, each file is downloaded once', async () => {
  const f = await fixture({ chunkBytes: 16_384, chunkDelayMs: 2 });
  try {
    const events: PullEvent[][] = [[], []];
    const [a, b] = await Promise.all(events.map((log) => pullModel('tiny', { ...f.base, onProgress: (e) => log.push(e) })));
    assert.equal(a!.files, b!.files);
    await assertSameBytes(f, TXT2IMG_FILES);
    for (const path of TXT2IMG_FILES) assert.is(servedRequests(f.server, path).length, 1, path);
    assert.ok(events.some((log) => log.some((e) => e.type === 'waiting')), 'the second pull waited for the lock');
  } finally {
    await f.done();
  }
});

test('two child processes pulling at once end with one good copy', async () => {
  const f = await fixture({ chunkBytes: 16_384, chunkDelayMs: 5 });
  try {
    const pullUrl = new URL('../src/models/pull.js', import.meta.url).href;
    const code = `
      const { pullModel } = await import(process.env.PULL_URL);
      let waited = false;
      const result = await pullModel('hf:${REPO}', {
        home: process.env.HOME_DIR,
        hub: { endpoint: process.env.ENDPOINT },
        lock: { pollMs: 10 },
        onProgress: (e) => { if (e.type === 'waiting') waited = true; },
      });
      process.stdout.write(JSON.stringify({ waited, files: result.files.map((f) => f.sha256) }));
    `;
    const run = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
          env: { ...process.env, PULL_URL: pullUrl, HOME_DIR: f.home, ENDPOINT: f.server.endpoint },
        });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (exit) => resolve({ code: exit, out, err }));
      });
    const [one, two] = await Promise.all([run(), run()]);
    assert.is(one.code, 0, one.err);
    assert.is(two.code, 0, two.err);
    const [a, b] = [JSON.parse(one.out), JSON.parse(two.out)];
    assert.equal(a.files, b.files);
    // Transfers are slowed to ~0.5 s so the children overlap and one meets the other's lock.
    assert.ok(a.waited || b.waited, 'one child waited for the other');
    await assertSameBytes(f, TXT2IMG_FILES);
    for (const path of TXT2IMG_FILES) assert.is(servedRequests(f.server, path).length, 1, path);
  } finally {
    await f.done();
  }
});

test('hostile file names from the server are refused and nothing is written outside the cache', async () => {
  const hostile = ['unet/../../../escape.onnx', 'text_encoder/../../../../escape2.json', '../escape3.json', '/tmp/escape4.json', 'unet\\..\\..\\escape5.onnx', 'vae_decoder/a/../../../escape6.onnx'];
  for (const name of hostile) {
    const f = await fixture({}, async (server, src) => {
      const files = await repoFromFolder(src);
      files.push({ path: name, data: Buffer.from('pwned'), lfs: name.endsWith('.onnx') });
      server.addRepo({ id: 'test-org/hostile', revisions: { main: files } });
    });
    try {
      await writeFile(join(f.tmp, 'marker'), '');
      const before = await listTree(f.tmp);
      const err = await rejects(pullModel('hf:test-org/hostile', { ...f.base, all: true }));
      assert.instance(err, UnsafePathError, name);
      const after = await listTree(f.tmp);
      const outsideHome = after.filter((p) => !p.startsWith('home') && !before.includes(p));
      assert.equal(outsideHome, [], `written outside the cache for ${name}`);
      assert.not.ok(after.some((p) => p.includes('escape')), name);
      assert.not.ok(f.server.requests.some((r) => r.url.includes('/resolve/')), 'refused before any download');
    } finally {
      await f.done();
    }
  }
  assert.not.ok(existsSync('/tmp/escape4.json'));
});

test('a hostile name inside a needed component stops a normal pull too', async () => {
  const f = await fixture({}, async (server, src) => {
    const files = await repoFromFolder(src);
    files.push({ path: 'unet/../../escape.onnx', data: Buffer.from('pwned'), lfs: true });
    server.addRepo({ id: 'test-org/hostile', revisions: { main: files } });
  });
  try {
    const err = await rejects(pullModel('hf:test-org/hostile', f.base));
    assert.instance(err, UnsafePathError);
  } finally {
    await f.done();
  }
});

test('not enough disk space is reported before anything is downloaded', async () => {
  const f = await fixture();
  try {
    const err = await rejects(pullModel('tiny', { ...f.base, diskFree: async () => 1000 }));
    assert.instance(err, InsufficientDiskSpaceError);
    assert.is((err as InsufficientDiskSpaceError).freeBytes, 1000);
    assert.not.ok(f.server.requests.some((r) => r.url.includes('/resolve/')));
  } finally {
    await f.done();
  }
});

test('a registry sha256 pin that disagrees with the Hub stops the pull', async () => {
  const f = await fixture();
  try {
    const registry = validateRegistry(await registryJsonFor([{ id: 'pinned', repo: REPO, sha256: { 'unet/weights.pb': 'a'.repeat(64) } }]));
    const err = await rejects(pullModel('pinned', { ...f.base, registry }));
    assert.instance(err, HubError);
    assert.match(err.message, /differs from the pin/);
    const good = sha256(await readFile(join(f.src, 'unet/weights.pb')));
    const ok = validateRegistry(await registryJsonFor([{ id: 'pinned', repo: REPO, sha256: { 'unet/weights.pb': good } }]));
    await pullModel('pinned', { ...f.base, registry: ok });
  } finally {
    await f.done();
  }
});

test('serves a real folder the same way (the lead\'s tiny-sd fixture path)', async () => {
  const f = await fixture();
  try {
    // The fixture's own source folder stands in for test/fixtures/tiny-sd until that exists.
    const tiny = new URL('../../test/fixtures/tiny-sd/', import.meta.url);
    const folder = existsSync(new URL('model_index.json', tiny)) ? fileURLToPath(tiny) : f.src;
    f.server.addRepo({ id: 'test-org/folder', revisions: { main: await repoFromFolder(folder) } });
    const result = await pullModel('hf:test-org/folder', f.base);
    for (const file of result.files) {
      assert.is(file.sha256, sha256(await readFile(join(folder, file.path))), file.path);
    }
  } finally {
    await f.done();
  }
});

test.run();
