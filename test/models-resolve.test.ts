import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addLocalModel } from '../src/models/local.js';
import { ModelNotCachedError, ModelPathError, UnknownModelError } from '../src/models/errors.js';
import { pullModel } from '../src/models/pull.js';
import { pullCommand, resolveModel } from '../src/models/resolve.js';
import { fakeHub, rejects, type FakeHub } from './helpers/hub-server.js';

const REPO = 'test-org/tiny';

type Fixture = FakeHub;

/** A fresh DIFFUSE_HOME and a fake Hub serving one small random repo. */
const fixture = (): Promise<Fixture> =>
  fakeHub({ repo: REPO, files: { 'text_encoder/model.onnx': 5000, 'unet/model.onnx': 9000, 'vae_decoder/model.onnx': 3000, 'vae_encoder/model.onnx': 3000 } });


test('offline and not cached: a clean error with the exact pull command, no network', async () => {
  const f = await fixture();
  try {
    const err = await rejects(resolveModel('tiny', { ...f.base, offline: true, allowDownload: true }));
    assert.instance(err, ModelNotCachedError);
    assert.is((err as ModelNotCachedError).exitCode, 1);
    assert.ok(err.message.includes('`diffuse models pull tiny`'), err.message);
    assert.match(err.message, /offline/);
    assert.is(f.server.requests.length, 0);

    const hf = await rejects(resolveModel(`hf:${REPO}@main`, { ...f.base, offline: true }));
    assert.ok(hf.message.includes(`\`diffuse models pull hf:${REPO}\``), hf.message);
  } finally {
    await f.done();
  }
});

test('online without allowDownload: the same pull command, still no network', async () => {
  const f = await fixture();
  try {
    const err = await rejects(resolveModel('tiny', f.base));
    assert.instance(err, ModelNotCachedError);
    assert.ok(err.message.includes('run `diffuse models pull tiny` to download it'), err.message);
    assert.is(f.server.requests.length, 0);
  } finally {
    await f.done();
  }
});

test('allowDownload pulls; afterwards offline resolves from the cache without a request', async () => {
  const f = await fixture();
  try {
    const first = await resolveModel('tiny', { ...f.base, allowDownload: true });
    assert.is(first.source, 'download');
    assert.is(first.entry?.id, 'tiny');
    const count = f.server.requests.length;
    const again = await resolveModel('tiny', { ...f.base, offline: true });
    assert.equal({ dir: again.dir, source: again.source, id: again.entry?.id }, { dir: first.dir, source: 'cache', id: 'tiny' });
    assert.is(f.server.requests.length, count);
  } finally {
    await f.done();
  }
});

test('a cached txt2img model is not enough for img2img: the command names the task', async () => {
  const f = await fixture();
  try {
    await pullModel('tiny', f.base);
    const err = await rejects(resolveModel('tiny', { ...f.base, offline: true, task: 'img2img' }));
    assert.instance(err, ModelNotCachedError);
    assert.ok(err.message.includes(`\`${pullCommand('tiny', { task: 'img2img' })}\``), err.message);
    assert.is(pullCommand('tiny', { task: 'img2img' }), 'diffuse models pull tiny --task img2img');
    await pullModel('tiny', { ...f.base, task: 'img2img' });
    assert.is((await resolveModel('tiny', { ...f.base, offline: true, task: 'img2img' })).source, 'cache');
  } finally {
    await f.done();
  }
});

test('a cached file deleted behind our back makes the model incomplete again', async () => {
  const f = await fixture();
  try {
    const { dir } = await pullModel('tiny', f.base);
    await rm(join(dir, 'unet/model.onnx'));
    await rejects(resolveModel('tiny', { ...f.base, offline: true }));
  } finally {
    await f.done();
  }
});

test('paths are used as they are; a missing one hints at hf: when it looks like a repo id', async () => {
  const f = await fixture();
  try {
    const folder = join(f.tmp, 'my-model');
    await mkdir(folder);
    const found = await resolveModel(folder, f.base);
    assert.equal(found, { dir: folder, ref: { kind: 'path', path: folder }, source: 'path' });
    const missing = await rejects(resolveModel('some-org/some-model', f.base));
    assert.instance(missing, ModelPathError);
    assert.is((missing as ModelPathError).exitCode, 2);
    assert.match(missing.message, /hf:some-org\/some-model/);
    const file = join(f.tmp, 'file.txt');
    await writeFile(file, '');
    assert.instance(await rejects(resolveModel(file, f.base)), ModelPathError);
  } finally {
    await f.done();
  }
});

test('ids added with `models add` resolve to their folder; unknown ids list the known ones', async () => {
  const f = await fixture();
  try {
    const folder = join(f.tmp, 'mine');
    await mkdir(folder);
    await writeFile(join(folder, 'model_index.json'), '{}');
    await addLocalModel(f.base.home!, f.registry, folder, 'mine');
    const local = await resolveModel('mine', { ...f.base, offline: true });
    assert.equal({ dir: local.dir, source: local.source }, { dir: folder, source: 'local' });
    const unknown = await rejects(resolveModel('nope', f.base));
    assert.instance(unknown, UnknownModelError);
    assert.is((unknown as UnknownModelError).exitCode, 2);
    assert.match(unknown.message, /tiny, mine/);
    await rm(folder, { recursive: true });
    assert.instance(await rejects(resolveModel('mine', f.base)), ModelPathError);
  } finally {
    await f.done();
  }
});

test.run();
