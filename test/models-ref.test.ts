import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidModelRefError, UnsafePathError } from '../src/models/errors.js';
import { formatModelRef, parseModelRef } from '../src/models/ref.js';
import { safeJoin, unsafeRepoPathReason } from '../src/models/safe-path.js';

test('registry ids, hf: refs and paths', () => {
  assert.equal(parseModelRef('sd15'), { kind: 'id', id: 'sd15' });
  assert.equal(parseModelRef('lcm-dreamshaper-v7'), { kind: 'id', id: 'lcm-dreamshaper-v7' });
  assert.equal(parseModelRef('hf:org/repo'), { kind: 'hf', repo: 'org/repo', revision: 'main' });
  assert.equal(parseModelRef('hf:stable-diffusion-v1-5/stable-diffusion-v1-5@onnx'), {
    kind: 'hf',
    repo: 'stable-diffusion-v1-5/stable-diffusion-v1-5',
    revision: 'onnx',
  });
  assert.equal(parseModelRef('hf:org/repo@refs/pr/1'), { kind: 'hf', repo: 'org/repo', revision: 'refs/pr/1' });
  for (const path of ['./models/sd', '/abs/model', 'models/sd', '~/sd', '.', 'C:\\models\\sd']) {
    assert.equal(parseModelRef(path), { kind: 'path', path }, path);
  }
});

test('formatModelRef round-trips', () => {
  for (const text of ['sd15', 'hf:org/repo', 'hf:org/repo@onnx', './x']) assert.is(formatModelRef(parseModelRef(text)), text);
});

test('hostile ids and hf: refs are usage errors (exit 2)', () => {
  const bad = [
    '',
    'hf:../x',
    'hf:/etc/passwd',
    'hf:org/repo/extra',
    'hf:org',
    'hf:org/..',
    'hf:org/re..po',
    'hf:org/repo@../../x',
    'hf:org/repo@/abs',
    'hf:org/repo@a//b',
    'hf:org/repo@',
    'hf:-org/repo',
    'sd15\u0000',
    'sd\n15',
    'hf:org/repo@main\u001b[31m',
    'SD15',
    'a..b',
    'hf:org\\x/repo',
  ];
  for (const text of bad) {
    assert.throws(
      () => parseModelRef(text),
      (err: Error) => err instanceof InvalidModelRefError && (err as InvalidModelRefError).exitCode === 2,
      JSON.stringify(text),
    );
  }
});

test('unsafe repo paths: traversal, absolute, backslash, controls, devices', () => {
  const bad = ['../x', '/etc/x', 'a/../../x', 'a/./b', 'a//b', 'a\\..\\..\\x', 'C:/x', 'unet/model.onnx.part', 'unet/model.onnx\u0000', 'a/con.txt', 'a/b.', 'a/b ', '', 'x/..'];
  for (const path of bad) assert.ok(unsafeRepoPathReason(path), JSON.stringify(path));
  for (const path of ['model_index.json', 'unet/model.onnx', 'unet/..weights.pb', 'a.b/c-d_e.onnx_data']) {
    assert.is(unsafeRepoPathReason(path), undefined, path);
  }
});

test('safeJoin stays inside its root or throws UnsafePathError', () => {
  const root = resolve('/tmp/diffuse-root');
  assert.is(safeJoin(root, 'unet/model.onnx'), join(root, 'unet', 'model.onnx'));
  assert.is(safeJoin(root, 'unet/..weights.pb'), join(root, 'unet', '..weights.pb'));
  for (const path of ['../x', 'a/../../x', '/etc/x', 'a\\..\\x']) {
    assert.throws(() => safeJoin(root, path), (err: Error) => err instanceof UnsafePathError, path);
  }
});

test.run();
