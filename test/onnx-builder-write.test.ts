import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GraphBuilder } from '../src/graphs/onnx-builder.js';
import { ElemType } from '../src/onnx/proto.js';
import { scratch } from './helpers/scratch.js';

/**
 * GraphBuilder.write reads the next tensor while it writes one: each tensor still lands whole at its
 * place, and a read that fails while a write is awaited is that write's error, not an unhandled
 * rejection (which would end the process).
 */
const S = suite('GraphBuilder.write reads ahead');
const tempDir = scratch(S);

const builder = (reads: Array<() => Promise<Float32Array>>): GraphBuilder => {
  const b = new GraphBuilder('g', 'float32');
  reads.forEach((read, i) => b.output(b.weight({ name: `w${i}`, dims: [4], read }), `y${i}`, ElemType.FLOAT, [4]));
  return b;
};

S('every tensor is written at its place, in order', async () => {
  const dir = tempDir();
  const values = [0, 1, 2].map((i) => Float32Array.from([i, i + 0.25, i + 0.5, i + 0.75]));
  await builder(values.map((v) => async () => v)).write(dir, 'data');
  const data = readFileSync(join(dir, 'data'));
  assert.equal([...new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4)], values.flatMap((v) => [...v]));
});

S('a read failing while the tensor before it is written rejects write with its error', async () => {
  const failure = new Error('the checkpoint ended early');
  const write = builder([async () => new Float32Array(4), () => Promise.reject(failure), async () => new Float32Array(4)]).write(tempDir(), 'data');
  try {
    await write;
    assert.unreachable('write resolved');
  } catch (err) {
    assert.is(err, failure);
  }
});

S.run();
