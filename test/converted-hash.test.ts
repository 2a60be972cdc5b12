import { createHash } from 'node:crypto';
import { readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { CHECKPOINT_RECORD, readCheckpointRecord } from '../src/graphs/model-folder.js';
import { GraphBuilder, type WeightType } from '../src/graphs/onnx-builder.js';
import { ElemType } from '../src/onnx/proto.js';
import { modelHash } from '../src/pipeline/model-hash.js';
import { scratch } from './helpers/scratch.js';
import { writeDiffusersFolder } from './helpers/synthetic-checkpoint.js';

/**
 * The hash a converted diffusers folder's metadata shows (its UNet's model.onnx then data file) is
 * taken while the conversion writes those bytes, so a first load does not read gigabytes back: it
 * must be the very value reading the files gives, alignment gaps included, and a record written
 * before it was stored must still give the same Model hash.
 */
const S = suite('a converted model records its UNet hash as it writes it');
const tempDir = scratch(S);
process.env.DIFFUSE_HOME = tempDir('diffuse-hash-home-');

const sha = (...files: string[]): string => {
  const h = createHash('sha256');
  for (const f of files) h.update(readFileSync(f));
  return h.digest('hex');
};

for (const type of ['float32', 'float16'] as WeightType[]) {
  S(`GraphBuilder.write feeds its hash model.onnx then the data file as written (${type}, a page-aligned tensor after a small one)`, async () => {
    const dir = tempDir();
    const b = new GraphBuilder('g', type);
    const values = (n: number) => async () => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const small = b.weight({ name: 'small', dims: [3], read: values(3) });
    const big = b.weight({ name: 'big', dims: [600, 1000], read: values(600_000) });
    b.output(small, 'a', ElemType.FLOAT, [3]);
    b.output(big, 'b', ElemType.FLOAT, [600, 1000]);
    const hash = createHash('sha256');
    await b.write(dir, 'data', { hash });
    const bytes = type === 'float32' ? 4 : 2;
    assert.is(statSync(join(dir, 'data')).size, 4096 + 600_000 * bytes, 'the big tensor starts on the next page: a gap of zeros in the file');
    assert.is(hash.digest('hex'), sha(join(dir, 'model.onnx'), join(dir, 'data')));
  });
}

S('converting a diffusers folder records the UNet files\' SHA-256; Model hash reads it, and an older record without it hashes the same', async () => {
  const work = tempDir();
  const dir = (await convertCheckpoint(writeDiffusersFolder(join(work, 'sd1-diffusers'), 'sd1'), join(work, 'onnx'), { precision: 'fp32', prediction: 'epsilon' })).dir;
  const unet = join(dir, 'unet');
  const expected = sha(join(unet, 'model.onnx'), join(unet, 'model.onnx_data'));
  const record = readCheckpointRecord(dir)!;
  assert.is(record.unetSha256, expected);
  assert.is(await modelHash(dir), expected.slice(0, 10));
  // An older diffuse's record, seen through another path (modelHash remembers each folder's answer).
  const { unetSha256: _, ...older } = record;
  writeFileSync(join(dir, CHECKPOINT_RECORD), JSON.stringify(older));
  const olderDir = join(work, 'older');
  symlinkSync(dir, olderDir);
  assert.is(await modelHash(olderDir), expected.slice(0, 10));
});

S.run();
