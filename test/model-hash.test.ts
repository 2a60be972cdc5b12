import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { modelHash } from '../src/pipeline/model-hash.js';
import { TINY_SD } from './helpers/cli.js';
import { writeExternalDataVariant } from './helpers/external-data.js';

process.env.DIFFUSE_HOME = mkdtempSync(join(tmpdir(), 'diffuse-hash-home-'));
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test('a graph with its weights inside hashes as its model.onnx (A1111-style 10 hex digits)', async () => {
  assert.is(await modelHash(TINY_SD), sha(readFileSync(join(TINY_SD, 'unet', 'model.onnx'))).slice(0, 10));
});

test('external weights are part of the hash: one graph, two sets of weights, two hashes', async () => {
  const root = mkdtempSync(join(tmpdir(), 'diffuse-hash-'));
  const a = join(root, 'a');
  const b = join(root, 'b');
  writeExternalDataVariant(join(TINY_SD, 'unet', 'model.onnx'), join(a, 'unet'));
  writeExternalDataVariant(join(TINY_SD, 'unet', 'model.onnx'), join(b, 'unet'));
  const weights = readFileSync(join(b, 'unet', 'model.onnx_data'));
  weights[100] ^= 1;
  writeFileSync(join(b, 'unet', 'model.onnx_data'), weights);
  assert.ok(readFileSync(join(a, 'unet', 'model.onnx')).equals(readFileSync(join(b, 'unet', 'model.onnx'))), 'the graphs are the same bytes');
  const expected = sha(Buffer.concat([readFileSync(join(a, 'unet', 'model.onnx')), readFileSync(join(a, 'unet', 'model.onnx_data'))])).slice(0, 10);
  assert.is(await modelHash(a), expected);
  assert.is.not(await modelHash(b), expected);
  assert.ok(existsSync(join(process.env.DIFFUSE_HOME!, 'hashes.json')), 'remembered for the next run');
});

test.run();
