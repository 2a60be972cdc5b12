import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder } from '../src/graphs/onnx-builder.js';
import { ElemType } from '../src/onnx/proto.js';

export interface AttentionShape {
  batch: number;
  queries: number;
  keys: number;
  hidden: number;
  heads: number;
}

/**
 * One attention block as torch exports SDPA (inputs q [B, S, hidden], k and v [B, L, hidden]):
 * head split, q and kᵀ times sqrt(1 / sqrt(d)), MatMul, Softmax, MatMul, heads merged; output `out`.
 * Written to `dir` (model.onnx, no weights) and returned as bytes.
 */
export async function plainAttentionGraph(dir: string, shape: AttentionShape): Promise<Uint8Array> {
  const { batch, hidden, heads } = shape;
  const g = new GraphBuilder('attention', 'float32');
  const split = g.ints([batch, -1, heads, hidden / heads]);
  const head = (name: string, length: number, perm: number[]) =>
    g.op('Transpose', [g.op('Reshape', [g.input(name, ElemType.FLOAT, [batch, length, hidden]), split], `/${name}`)], `/${name}`, { perm });
  const sqrtScale = g.floats([Math.sqrt(1 / Math.sqrt(hidden / heads))], []);
  const q = g.op('Mul', [head('q', shape.queries, [0, 2, 1, 3]), sqrtScale], '/q');
  const k = g.op('Mul', [head('k', shape.keys, [0, 2, 3, 1]), sqrtScale], '/k');
  const probs = g.op('Softmax', [g.op('MatMul', [q, k], '/scores')], '/softmax', { axis: -1 });
  const context = g.op('MatMul', [probs, head('v', shape.keys, [0, 2, 1, 3])], '/context');
  const merged = g.op('Reshape', [g.op('Transpose', [context], '/merge', { perm: [0, 2, 1, 3] }), g.ints([batch, -1, hidden])], '/merge');
  g.output(merged, 'out', ElemType.FLOAT, [batch, shape.queries, hidden]);
  await g.write(dir, 'model.onnx.data');
  return new Uint8Array(readFileSync(join(dir, 'model.onnx')));
}
