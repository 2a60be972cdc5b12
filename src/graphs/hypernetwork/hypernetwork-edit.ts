import { appendInitializer, floatInitializer, initializers } from '../../onnx/initializers.js';
import { defaultOpset, floatAttribute, intAttribute, intsAttribute, makeNode } from '../../onnx/node-builders.js';
import { ElemType, Message, ModelProto, messageField, type GraphProto } from '../../onnx/proto.js';
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

/** Emits nodes into a list and weights into the graph, under one name prefix. */
class Emitter {
  readonly nodes: Message[] = [];
  private count = 0;

  constructor(
    private readonly graph: GraphProto,
    private readonly opset: number,
  ) {}

  private name(prefix: string, op: string): string {
    return `${prefix}/${op}_${this.count++}`;
  }

  op(prefix: string, opType: string, inputs: string[], attributes: Message[] = []): string {
    const name = this.name(prefix, opType);
    const out = `${name}_output_0`;
    this.nodes.push(makeNode(opType, name, inputs, [out], attributes));
    return out;
  }

  constant(prefix: string, dims: number[], values: Float32Array): string {
    const name = this.name(prefix, 'weight');
    appendInitializer(this.graph, floatInitializer(name, ElemType.FLOAT, dims, values));
    return name;
  }

  scalar(prefix: string, value: number): string {
    return this.constant(prefix, [], Float32Array.of(value));
  }

  linear(prefix: string, x: string, layer: DenseLayer): string {
    const [out, inner] = layer.weight.shape as [number, number];
    const transposed = new Float32Array(out * inner);
    for (let o = 0; o < out; o++) for (let i = 0; i < inner; i++) transposed[i * out + o] = layer.weight.values[o * inner + i]!;
    const y = this.op(prefix, 'MatMul', [x, this.constant(prefix, [inner, out], transposed)]);
    return this.op(prefix, 'Add', [y, this.constant(prefix, [out], layer.bias)]);
  }

  /** torch.nn.LayerNorm (eps 1e-5): the ONNX op from opset 17, written out for older graphs (optimum's exports use 14). */
  layerNorm(prefix: string, x: string, layer: DenseLayer): string {
    const width = layer.bias.length;
    const scale = this.constant(prefix, [width], layer.weight.values);
    const shift = this.constant(prefix, [width], layer.bias);
    if (this.opset >= 17) return this.op(prefix, 'LayerNormalization', [x, scale, shift], [intAttribute('axis', -1), floatAttribute('epsilon', LAYER_NORM_EPS)]);
    const mean = this.op(prefix, 'ReduceMean', [x], [intsAttribute('axes', [-1])]);
    const centred = this.op(prefix, 'Sub', [x, mean]);
    const variance = this.op(prefix, 'ReduceMean', [this.op(prefix, 'Mul', [centred, centred])], [intsAttribute('axes', [-1])]);
    const normed = this.op(prefix, 'Div', [centred, this.op(prefix, 'Sqrt', [this.op(prefix, 'Add', [variance, this.scalar(prefix, LAYER_NORM_EPS)])])]);
    return this.op(prefix, 'Add', [this.op(prefix, 'Mul', [normed, scale]), shift]);
  }

  activation(prefix: string, x: string, name: string): string {
    const mul = (a: string, b: string) => this.op(prefix, 'Mul', [a, b]);
    switch (name) {
      case 'relu':
        return this.op(prefix, 'Relu', [x]);
      case 'leakyrelu':
        return this.op(prefix, 'LeakyRelu', [x], [floatAttribute('alpha', 0.01)]);
      case 'elu':
        return this.op(prefix, 'Elu', [x], [floatAttribute('alpha', 1)]);
      case 'selu':
        return this.op(prefix, 'Selu', [x]);
      case 'tanh':
        return this.op(prefix, 'Tanh', [x]);
      case 'sigmoid':
        return this.op(prefix, 'Sigmoid', [x]);
      case 'softsign':
        return this.op(prefix, 'Softsign', [x]);
      case 'softplus':
        return this.op(prefix, 'Softplus', [x]);
      case 'silu':
        return mul(x, this.op(prefix, 'Sigmoid', [x]));
      case 'mish':
        return mul(x, this.op(prefix, 'Tanh', [this.op(prefix, 'Softplus', [x])]));
      // A1111's "swish" is torch's Hardswish: x * relu6(x + 3) / 6.
      case 'swish':
      case 'hardswish':
        return mul(x, this.op(prefix, 'HardSigmoid', [x], [floatAttribute('alpha', 1 / 6), floatAttribute('beta', 0.5)]));
      case 'gelu': {
        const erf = this.op(prefix, 'Erf', [this.op(prefix, 'Div', [x, this.scalar(prefix, Math.SQRT2)])]);
        return mul(mul(x, this.op(prefix, 'Add', [erf, this.scalar(prefix, 1)])), this.scalar(prefix, 0.5));
      }
      default:
        throw new CheckpointError(`hypernetwork activation '${name}' is not supported (diffuse runs relu, leakyrelu, elu, selu, tanh, sigmoid, softsign, softplus, silu, mish, swish, hardswish, gelu)`);
    }
  }

  /** A1111's HypernetworkModule forward: x + mlp(x) × multiplier. */
  module(prefix: string, x: string, mlp: HypernetworkMlp, net: Hypernetwork, multiplier: number): string {
    const linears = mlp.layers.filter((l) => l.kind === 'linear').length;
    let h = x;
    let seen = 0;
    for (const layer of mlp.layers) {
      if (layer.kind === 'layer-norm') {
        h = this.layerNorm(prefix, h, layer);
        continue;
      }
      h = this.linear(prefix, h, layer);
      seen++;
      if (net.activation && (seen < linears || net.activateOutput)) h = this.activation(prefix, h, net.activation);
    }
    return this.op(prefix, 'Add', [x, this.op(prefix, 'Mul', [h, this.scalar(prefix, multiplier)])]);
  }
}

export function applyHypernetworks(model: Uint8Array, nets: readonly HypernetworkInput[]): HypernetworkEdit {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const emit = new Emitter(graph, defaultOpset(proto));
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
          const before = emit.nodes.length;
          out = emit.module(`/hypernetwork.${n}/${width}/${kind === 0 ? 'k' : 'v'}${memo.size}`, value, pair[kind], net, multiplier);
          nodes.push(...emit.nodes.slice(before));
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
