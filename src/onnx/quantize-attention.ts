import { appendInitializer, floatInitializer, rawInitializer } from './initializers.js';
import { GraphIndex, matchAttention } from './fuse-attention.js';
import { MS_DOMAIN, defaultOpset, ensureOpsetImport, intAttribute, makeNode } from './node-builders.js';
import { ElemType, Message, ModelProto, messageField, type NodeProto } from './proto.js';
import { weightGrid, type Int8Format } from './quantize-int8.js';

/**
 * The attention's two products in int8, bytes in, bytes out: in every attention block
 * fuse-attention.ts recognises (plain, as exported), the scores q·kᵀ and the context probs·v
 * become com.microsoft.DynamicQuantizeMatMul. Its A (the scaled queries, the softmax
 * probabilities) is quantized per call to uint8 over its own range, as the int8 MatMuls' inputs
 * are; its B (the scaled keys, the values) is quantized here, in the graph, per tensor and
 * symmetric on `format`'s weight grid (±127 int8, ±127 around 128 as uint8, or ±63) with scale
 * max|B| / bound, so the kernels ONNX Runtime picks are the int8 weights' (exact on this CPU
 * when `format` is the one int8Support chose). Softmax and everything else stay float32.
 */

export interface QuantizedAttentionModel {
  model: Uint8Array;
  /** Attention blocks whose two products now run in int8. */
  attentions: number;
  /** Softmax nodes left as they were because the pattern around them was not recognised. */
  skipped: number;
}

const GRAPH_NODE = 1;
/** The scale of an all-zero B: any positive number quantizes it to zeros; FLT_MIN keeps the Div finite. */
const FLT_MIN = 1.1754943508222875e-38;

export function quantizeAttention(model: Uint8Array, format: Int8Format): QuantizedAttentionModel {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const index = new GraphIndex(graph);
  const grid = weightGrid(format);
  const names = { bound: 'diffuse_attention_int8/bound', tiny: 'diffuse_attention_int8/min_scale', zeroPoint: 'diffuse_attention_int8/zero_point' };
  const replacement = new Map<Message, Message[]>();
  let skipped = 0;

  /** `product` (a MatMul of two activations) as DynamicQuantizeMatMul with B quantized per tensor first. */
  const int8Product = (product: NodeProto): Message[] => {
    const [a, b] = product.inputs as [string, string];
    const base = product.name || product.outputs[0]!;
    const n = (s: string) => `${base}/int8/${s}`;
    return [
      makeNode('Abs', n('Abs'), [b], [n('abs')]),
      makeNode('ReduceMax', n('ReduceMax'), [n('abs')], [n('max')], [intAttribute('keepdims', 0)]),
      makeNode('Div', n('Div'), [n('max'), names.bound], [n('scale_raw')]),
      makeNode('Max', n('Max'), [n('scale_raw'), names.tiny], [n('scale')]),
      makeNode('QuantizeLinear', n('QuantizeLinear'), [b, n('scale'), names.zeroPoint], [n('b')]),
      makeNode('DynamicQuantizeMatMul', n('DynamicQuantizeMatMul'), [a, n('b'), n('scale'), names.zeroPoint], [product.outputs[0]!], [], MS_DOMAIN),
    ];
  };

  for (const softmax of index.nodes.filter((n) => n.opType === 'Softmax')) {
    const attention = matchAttention(index, softmax, defaultOpset(proto) >= 13 ? -1 : 1);
    if (!attention) {
      skipped++;
      continue;
    }
    for (const product of [attention.scores, attention.context]) replacement.set(product.msg, int8Product(product));
  }
  if (replacement.size === 0) return { model, attentions: 0, skipped };
  graph.msg.set(
    GRAPH_NODE,
    graph.msg.all(GRAPH_NODE).flatMap((f) => {
      const nodes = f.child && replacement.get(f.child);
      return nodes ? nodes.map((m) => messageField(GRAPH_NODE, m)) : [f];
    }),
  );
  appendInitializer(graph, floatInitializer(names.bound, ElemType.FLOAT, [], Float32Array.of(grid.bound)));
  appendInitializer(graph, floatInitializer(names.tiny, ElemType.FLOAT, [], Float32Array.of(FLT_MIN)));
  appendInitializer(graph, rawInitializer(names.zeroPoint, grid.elemType, [], Uint8Array.of(grid.zeroPoint)));
  ensureOpsetImport(proto, MS_DOMAIN);
  return { model: proto.encode(), attentions: replacement.size / 2, skipped };
}
