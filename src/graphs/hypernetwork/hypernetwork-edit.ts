import { GraphEmitter } from '../../onnx/graph-emitter.js';
import { initializers } from '../../onnx/initializers.js';
import { defaultOpset, floatAttribute, intAttribute, intsAttribute } from '../../onnx/node-builders.js';
import { Message, ModelProto, messageField } from '../../onnx/proto.js';
import { CheckpointError } from '../errors.js';
import type { DenseLayer, Hypernetwork, HypernetworkMlp } from './hypernetwork-file.js';

/**
 * Hypernetworks as nodes of a UNet graph: A1111 passes the context of every attention's k and v
 * projections through the hypernetwork layers of the context's width (self-attention: the block's
 * own hidden states, 320/640/1280 wide; cross-attention: the text, 768), several hypernetworks one
 * after another. Here each `attnN/to_k` and `attnN/to_v` MatMul (found by its node scope, as in
 * the graphs diffuse builds and optimum's exports) reads its input through those layers instead.
 * The text's layers are computed once for all cross-attentions that share it.
 */

export interface HypernetworkInput {
  net: Hypernetwork;
  multiplier: number;
}

export interface HypernetworkEdit {
  model: Uint8Array;
  result: { patched: number };
}

const GRAPH_NODE = 1;
const PROJECTION = /\/attn[12]\/to_([kv])\/MatMul$/;
const LAYER_NORM_EPS = 1e-5;

function linear(e: GraphEmitter, x: string, layer: DenseLayer): string {
  const [out, inner] = layer.weight.shape as [number, number];
  const transposed = new Float32Array(out * inner);
  for (let o = 0; o < out; o++) for (let i = 0; i < inner; i++) transposed[i * out + o] = layer.weight.values[o * inner + i]!;
  const y = e.op('MatMul', [x, e.float([inner, out], transposed)]);
  return e.op('Add', [y, e.float([out], layer.bias)]);
}

/** torch.nn.LayerNorm (eps 1e-5): the ONNX op from opset 17, written out for older graphs (optimum's exports use 14). */
function layerNorm(e: GraphEmitter, opset: number, x: string, layer: DenseLayer): string {
  const width = layer.bias.length;
  const scale = e.float([width], layer.weight.values);
  const shift = e.float([width], layer.bias);
  if (opset >= 17) return e.op('LayerNormalization', [x, scale, shift], [intAttribute('axis', -1), floatAttribute('epsilon', LAYER_NORM_EPS)]);
  const mean = e.op('ReduceMean', [x], [intsAttribute('axes', [-1])]);
  const centred = e.op('Sub', [x, mean]);
  const variance = e.op('ReduceMean', [e.op('Mul', [centred, centred])], [intsAttribute('axes', [-1])]);
  const normed = e.op('Div', [centred, e.op('Sqrt', [e.op('Add', [variance, e.scalar(LAYER_NORM_EPS)])])]);
  return e.op('Add', [e.op('Mul', [normed, scale]), shift]);
}

function activation(e: GraphEmitter, x: string, name: string): string {
  const mul = (a: string, b: string) => e.op('Mul', [a, b]);
  switch (name) {
    case 'relu':
      return e.op('Relu', [x]);
    case 'leakyrelu':
      return e.op('LeakyRelu', [x], [floatAttribute('alpha', 0.01)]);
    case 'elu':
      return e.op('Elu', [x], [floatAttribute('alpha', 1)]);
    case 'selu':
      return e.op('Selu', [x]);
    case 'tanh':
      return e.op('Tanh', [x]);
    case 'sigmoid':
      return e.op('Sigmoid', [x]);
    case 'softsign':
      return e.op('Softsign', [x]);
    case 'softplus':
      return e.op('Softplus', [x]);
    case 'silu':
      return mul(x, e.op('Sigmoid', [x]));
    case 'mish':
      return mul(x, e.op('Tanh', [e.op('Softplus', [x])]));
    // A1111's "swish" is torch's Hardswish: x * relu6(x + 3) / 6.
    case 'swish':
    case 'hardswish':
      return mul(x, e.op('HardSigmoid', [x], [floatAttribute('alpha', 1 / 6), floatAttribute('beta', 0.5)]));
    case 'gelu': {
      const erf = e.op('Erf', [e.op('Div', [x, e.scalar(Math.SQRT2)])]);
      return mul(mul(x, e.op('Add', [erf, e.scalar(1)])), e.scalar(0.5));
    }
    default:
      throw new CheckpointError(`hypernetwork activation '${name}' is not supported (diffuse runs relu, leakyrelu, elu, selu, tanh, sigmoid, softsign, softplus, silu, mish, swish, hardswish, gelu)`);
  }
}

/** A1111's HypernetworkModule forward: x + mlp(x) × multiplier. */
function hypernetworkModule(e: GraphEmitter, opset: number, x: string, mlp: HypernetworkMlp, net: Hypernetwork, multiplier: number): string {
  const linears = mlp.layers.filter((l) => l.kind === 'linear').length;
  let h = x;
  let seen = 0;
  for (const layer of mlp.layers) {
    if (layer.kind === 'layer-norm') {
      h = layerNorm(e, opset, h, layer);
      continue;
    }
    h = linear(e, h, layer);
    seen++;
    if (net.activation && (seen < linears || net.activateOutput)) h = activation(e, h, net.activation);
  }
  return e.op('Add', [x, e.op('Mul', [h, e.scalar(multiplier)])]);
}

export function applyHypernetworks(model: Uint8Array, nets: readonly HypernetworkInput[]): HypernetworkEdit {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const opset = defaultOpset(proto);
  const inits = new Map(initializers(graph).map((i) => [i.name, i]));
  const casts = new Map<string, string>();
  for (const node of graph.nodes) if (node.opType === 'Cast' && inits.has(node.inputs[0]!)) casts.set(node.outputs[0]!, node.inputs[0]!);
  const memo = new Map<string, string>();
  const used = new Set<number>();
  const nodes: Message[] = [];
  let patched = 0;
  for (const node of graph.nodes) {
    const m = PROJECTION.exec(node.name);
    const weight = m && inits.get(casts.get(node.inputs[1]!) ?? node.inputs[1]!);
    if (m && weight && weight.dims.length === 2) {
      const kind = m[1] === 'k' ? 0 : 1;
      const width = weight.dims[0]!;
      let value = node.inputs[0]!;
      nets.forEach(({ net, multiplier }, n) => {
        const pair = net.sizes.get(width);
        if (!pair) return;
        used.add(n);
        const key = `${value}|${kind}|${n}`;
        let out = memo.get(key);
        if (!out) {
          const emit = new GraphEmitter(graph, `/hypernetwork.${n}/${width}/${kind === 0 ? 'k' : 'v'}${memo.size}`);
          out = hypernetworkModule(emit, opset, value, pair[kind], net, multiplier);
          nodes.push(...emit.nodes.map((e) => e.msg));
          memo.set(key, out);
        }
        value = out;
      });
      if (value !== node.inputs[0]) {
        node.inputs = [value, ...node.inputs.slice(1)];
        patched++;
      }
    }
    nodes.push(node.msg);
  }
  nets.forEach(({ net }, n) => {
    if (!used.has(n)) {
      throw new CheckpointError(`hypernetwork ${net.name} has layers for widths ${[...net.sizes.keys()].join(', ')}, none of which this UNet's attention reads; it was made for another model family`);
    }
  });
  graph.msg.set(GRAPH_NODE, nodes.map((n) => messageField(GRAPH_NODE, n)));
  return { model: proto.encode(), result: { patched } };
}
