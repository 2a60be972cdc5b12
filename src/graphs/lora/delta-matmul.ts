import { ort } from '../../onnx/runtime.js';
import { makeNode } from '../../onnx/node-builders.js';
import { ElemType, Message, intField, messageField, stringField } from '../../onnx/proto.js';

/**
 * The matrix products of a merge ([out, rank] @ [rank, in·k·k] per layer: tens of GFLOP for a LoCon
 * on SD 1.5) run on ONNX Runtime's CPU MatMul, one in-memory graph with symbolic sizes for every
 * shape: JavaScript loops managed 0.13 GFLOP/s here, which made a full-size LoCon a matter of minutes.
 */

export type MatMul = (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => Promise<Float32Array>;

// onnx.proto field numbers (onnx 1.17).
const MODEL = { irVersion: 1, graph: 7, opsetImport: 8 } as const;
const GRAPH = { node: 1, name: 2, input: 11, output: 12 } as const;

function matrix(name: string, rows: string, cols: string): Message {
  const dim = (p: string) => messageField(1, new Message([stringField(2, p)]));
  const tensor = new Message([intField(1, ElemType.FLOAT), messageField(2, new Message([dim(rows), dim(cols)]))]);
  return new Message([stringField(1, name), messageField(2, new Message([messageField(1, tensor)]))]);
}

function matmulModel(): Uint8Array {
  const graph = new Message([
    messageField(GRAPH.node, makeNode('MatMul', 'product', ['a', 'b'], ['y'])),
    stringField(GRAPH.name, 'lora-delta'),
    messageField(GRAPH.input, matrix('a', 'm', 'k')),
    messageField(GRAPH.input, matrix('b', 'k', 'n')),
    messageField(GRAPH.output, matrix('y', 'm', 'n')),
  ]);
  return new Message([intField(MODEL.irVersion, 8), messageField(MODEL.graph, graph), messageField(MODEL.opsetImport, new Message([stringField(1, ''), intField(2, 17)]))]).encode();
}

/** A MatMul on ONNX Runtime's CPU provider, and how to free it. */
export async function openMatMul(): Promise<{ matmul: MatMul; release: () => Promise<void> }> {
  const session = await ort.InferenceSession.create(matmulModel(), { executionProviders: ['cpu'] });
  return {
    matmul: async (a, b, m, k, n) => {
      const out = await session.run({ a: new ort.Tensor('float32', a, [m, k]), b: new ort.Tensor('float32', b, [k, n]) });
      return out['y']!.data as Float32Array;
    },
    release: () => session.release(),
  };
}
