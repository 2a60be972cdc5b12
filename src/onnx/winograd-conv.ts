import { closeSync, openSync, writeSync } from 'node:fs';
import { appendInitializer, floatInitializer, initializers, keepInitializers, pointAtExternalData, rawInitializer, readFloatInitializer, type InitializerInfo } from './initializers.js';
import { intAttr, intAttribute, intsAttr, intsAttribute, makeNode } from './node-builders.js';
import { ElemType, ModelProto, messageField, type GraphProto, type Message, type NodeProto } from './proto.js';
import { TILE_POSITIONS, inputTransformKernels, outputTransformMatrix, transformWeights } from './winograd-transforms.js';

/**
 * Rewrites 3x3 stride-1 "same" convolutions as Winograd F(2x2, 3x3) in standard ONNX operators,
 * so ONNX Runtime's GEMMs do 16 multiplies per 2x2 output tile and channel pair instead of 36:
 *
 *   x [N, C, H, W] ─ depthwise Conv (16 fixed 4x4 kernels per channel, stride 2, pads 1/1/2/2)
 *     → [N, 16C, Th, Tw]  (Th = ⌈H/2⌉: the bottom/right pad of 2 covers odd and even sides alike)
 *     → Reshape [N, C, 16, P] → Transpose → [16, C, N·P]
 *     → MatMul with U = G w Gᵀ [16, O, C]                         → [16, O, N·P]
 *     → MatMul by the [4, 16] output transform                    → [4, O·N·P]
 *     → Reshape [2, 2, O, N, Th, Tw] → Transpose → [N, O, 2Th, 2Tw] → Slice to H x W → + bias
 *
 * U is computed here (float64, stored float32) and written as new external data, one tensor at
 * a time: left in the graph as a product of constants, ONNX Runtime's constant folding made
 * session creation six times slower on SD 1.5. By default convolutions with fewer than 16 input
 * or output channels (a UNet's conv_in and conv_out) are left alone: their GEMM is too small for
 * the transforms around it to pay; `rewrites` chooses otherwise. Weights the rewrite no longer
 * reads are dropped from the graph (their external data stays in its file, unread).
 */

export interface WinogradOptions {
  /** Which 3x3 convolutions to rewrite, by input and output channel count (default: 16 or more of each). */
  rewrites?: (inChannels: number, outChannels: number) => boolean;
}

export interface WinogradReport {
  /** Convolutions rewritten. */
  rewritten: number;
  /** 3x3 convolutions left as they were (not chosen by `rewrites`, not float32, or not stride 1 / pad 1 / group 1). */
  skipped: number;
}

export interface WinogradModel {
  model: Uint8Array;
  result: WinogradReport;
  /** The transformed weights, written to `from`, which the graph reads as `file` beside it. */
  data: { file: string; from: string };
}

const GRAPH_NODE = 1;
const DEFAULT_MIN_CHANNELS = 16;
const wideEnough = (inChannels: number, outChannels: number): boolean => inChannels >= DEFAULT_MIN_CHANNELS && outChannels >= DEFAULT_MIN_CHANNELS;

interface Candidate {
  node: NodeProto;
  weight: InitializerInfo;
  bias: InitializerInfo | undefined;
  out: number;
  in: number;
}

function same(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A float32 Conv with a constant [O, C, 3, 3] weight, stride 1, dilation 1, group 1 and pad 1 on every side. */
function candidate(node: NodeProto, inits: ReadonlyMap<string, InitializerInfo>): Candidate | undefined | 'skip' {
  if (node.opType !== 'Conv' || node.inputs.length < 2) return undefined;
  const weight = inits.get(node.inputs[1]!);
  if (!weight || weight.dims.length !== 4 || weight.dims[2] !== 3 || weight.dims[3] !== 3) return undefined;
  const bias = node.inputs[2] ? inits.get(node.inputs[2]) : undefined;
  const attrs = new Set(node.attributes.map((a) => a.name));
  const ok =
    weight.elemType === ElemType.FLOAT &&
    (node.inputs[2] === undefined || node.inputs[2] === '' || bias?.elemType === ElemType.FLOAT) &&
    same(intsAttr(node, 'pads'), [1, 1, 1, 1]) &&
    (!attrs.has('strides') || same(intsAttr(node, 'strides'), [1, 1])) &&
    (!attrs.has('dilations') || same(intsAttr(node, 'dilations'), [1, 1])) &&
    (intAttr(node, 'group') ?? 1) === 1 &&
    !attrs.has('auto_pad');
  return ok ? { node, weight, bias, out: weight.dims[0]!, in: weight.dims[1]! } : 'skip';
}

/** Small constants shared by every rewritten Conv, added to the graph once each. */
class Constants {
  private readonly added = new Set<string>();

  constructor(private readonly graph: GraphProto) {}

  ints(name: string, values: readonly number[]): string {
    if (!this.added.has(name)) {
      this.added.add(name);
      const raw = new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
      appendInitializer(this.graph, rawInitializer(name, ElemType.INT64, [values.length], raw));
    }
    return name;
  }

  floats(name: string, dims: readonly number[], values: () => Float32Array): string {
    if (!this.added.has(name)) {
      this.added.add(name);
      appendInitializer(this.graph, floatInitializer(name, ElemType.FLOAT, dims, values()));
    }
    return name;
  }
}

/** The nodes replacing one Conv; `u` names its transformed weight [16, O, C] and `bias` its [O, 1, 1] bias. */
function winogradNodes(c: Candidate, u: string, bias: string | undefined, k: Constants): Message[] {
  const x = c.node.inputs[0]!;
  const output = c.node.outputs[0]!;
  const p = `${output}/winograd`;
  const nodes: Message[] = [];
  const node = (op: string, inputs: string[], name: string, attrs: Message[] = []): string => {
    nodes.push(makeNode(op, `${p}/${name}`, inputs, [`${p}/${name}`], attrs));
    return `${p}/${name}`;
  };
  const kernels = k.floats(`winograd/input_transform_c${c.in}`, [c.in * TILE_POSITIONS, 1, 4, 4], () => inputTransformKernels(c.in));
  const d = node('Conv', [x, kernels], 'input_transform', [
    intAttribute('group', c.in),
    intsAttribute('kernel_shape', [4, 4]),
    intsAttribute('strides', [2, 2]),
    intsAttribute('pads', [1, 1, 2, 2]),
  ]);
  const split = node('Reshape', [d, k.ints(`winograd/split_c${c.in}`, [0, c.in, TILE_POSITIONS, -1])], 'split');
  const tiles = node('Transpose', [split], 'tiles', [intsAttribute('perm', [2, 1, 0, 3])]);
  const v = node('Reshape', [tiles, k.ints(`winograd/flat_c${c.in}`, [TILE_POSITIONS, c.in, -1])], 'v');
  const m = node('MatMul', [u, v], 'product');
  const rows = node('Reshape', [m, k.ints('winograd/rows', [TILE_POSITIONS, -1])], 'rows');
  const y4 = node('MatMul', [k.floats('winograd/output_transform', [4, TILE_POSITIONS], outputTransformMatrix), rows], 'output_transform');
  // Tile counts from the transformed input's shape [N, 16C, Th, Tw], the size to keep from x's.
  const dShape = node('Shape', [d], 'tiles_shape');
  const batch = node('Gather', [dShape, k.ints('winograd/index_0', [0])], 'batch');
  const grid = node('Gather', [dShape, k.ints('winograd/index_2_3', [2, 3])], 'grid');
  const shape6 = node('Concat', [k.ints(`winograd/head_o${c.out}`, [2, 2, c.out]), batch, grid], 'shape6', [intAttribute('axis', 0)]);
  const y6 = node('Reshape', [y4, shape6], 'tiled');
  const yt = node('Transpose', [y6], 'interleave', [intsAttribute('perm', [3, 2, 4, 0, 5, 1])]);
  const sides = node('Mul', [grid, k.ints('winograd/two', [2])], 'sides');
  const shape4 = node('Concat', [batch, k.ints(`winograd/channels_o${c.out}`, [c.out]), sides], 'shape4', [intAttribute('axis', 0)]);
  const y = node('Reshape', [yt, shape4], 'image');
  const size = node('Gather', [node('Shape', [x], 'input_shape'), k.ints('winograd/index_2_3', [2, 3])], 'size');
  const sliceInputs = [y, k.ints('winograd/zeros_2', [0, 0]), size, k.ints('winograd/index_2_3', [2, 3])];
  if (bias === undefined) {
    nodes.push(makeNode('Slice', `${p}/crop`, sliceInputs, [output]));
  } else {
    nodes.push(makeNode('Add', `${p}/bias`, [node('Slice', sliceInputs, 'crop'), bias], [output]));
  }
  return nodes;
}

/** The 3x3 convolutions `rewrites` chooses, and how many other 3x3 ones there are. */
function choose(graph: GraphProto, rewrites: (inChannels: number, outChannels: number) => boolean): { chosen: Candidate[]; skipped: number } {
  const inits = new Map(initializers(graph).map((i) => [i.name, i]));
  const chosen: Candidate[] = [];
  let skipped = 0;
  for (const node of graph.nodes) {
    const c = candidate(node, inits);
    if (c === undefined) continue;
    if (c === 'skip' || !rewrites(c.in, c.out)) skipped++;
    else chosen.push(c);
  }
  return { chosen, skipped };
}

/** How many convolutions winogradConvs would rewrite, without reading a weight. */
export function winogradCandidates(model: Uint8Array, rewrites: WinogradOptions['rewrites'] = wideEnough): number {
  return choose(ModelProto.decode(model).graph, rewrites).chosen.length;
}

export function winogradConvs(model: Uint8Array, modelDir: string, data: { file: string; staging: string }, options: WinogradOptions = {}): WinogradModel {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const { chosen, skipped } = choose(graph, options.rewrites ?? wideEnough);
  const constants = new Constants(graph);
  const replacements = new Map<Message, Message[]>();
  const replacedWeights = new Set<string>();
  let offset = 0;
  const out = openSync(data.staging, 'w');
  try {
    for (const c of chosen) {
      const u = transformWeights(readFloatInitializer(c.weight, modelDir), c.out, c.in);
      const uName = `${c.node.outputs[0]!}/winograd/u`;
      const tensor = rawInitializer(uName, ElemType.FLOAT, [TILE_POSITIONS, c.out, c.in], new Uint8Array(0));
      pointAtExternalData(tensor, data.file, offset, u.byteLength);
      writeSync(out, new Uint8Array(u.buffer, u.byteOffset, u.byteLength));
      offset += u.byteLength;
      appendInitializer(graph, tensor);
      let biasName: string | undefined;
      if (c.bias) {
        biasName = `${c.node.outputs[0]!}/winograd/bias`;
        appendInitializer(graph, floatInitializer(biasName, ElemType.FLOAT, [c.out, 1, 1], readFloatInitializer(c.bias, modelDir)));
        replacedWeights.add(c.bias.name);
      }
      replacedWeights.add(c.weight.name);
      replacements.set(c.node.msg, winogradNodes(c, uName, biasName, constants));
    }
  } finally {
    closeSync(out);
  }
  graph.msg.set(
    GRAPH_NODE,
    graph.msg.all(GRAPH_NODE).flatMap((f) => {
      const nodes = f.child && replacements.get(f.child);
      return nodes ? nodes.map((n) => messageField(GRAPH_NODE, n)) : [f];
    }),
  );
  const read = new Set(graph.nodes.flatMap((n) => n.inputs));
  keepInitializers(graph, (name) => !replacedWeights.has(name) || read.has(name));
  return { model: proto.encode(), result: { rewritten: replacements.size, skipped }, data: { file: data.file, from: data.staging } };
}
