import { TENSOR, appendInitializer, floatInitializer, initializers, moveInlineDataToFile, rawInitializer, readFloatInitializer, type ExternalData, type InitializerInfo } from './initializers.js';
import { MS_DOMAIN, defaultOpset, ensureOpsetImport, intAttr, intAttribute, makeNode } from './node-builders.js';
import { ElemType, Message, ModelProto, messageField, type GraphProto, type NodeProto } from './proto.js';

/**
 * int8 quantization of a diffusion graph, bytes in, bytes out, in the two forms ONNX Runtime's CPU
 * provider runs fast (issue 7's measurements: 3–4× fp32):
 *
 * - MatMul by a weight → com.microsoft.DynamicQuantizeMatMul: weights int8, symmetric per output
 *   column; the activation is quantized per call from its own range, so it needs no calibration.
 *   A bias Add that only follows the MatMul moves into the node.
 * - Conv → QDQ (QuantizeLinear/DequantizeLinear around a float Conv), which ORT rewrites to
 *   QLinearConv at load: weights int8 per output channel, bias int32, activations uint8 with the
 *   ranges a calibration run recorded. ConvInteger, the dynamic alternative, is 5× slower than
 *   the float Conv in ORT 1.30, and it accepts no per-channel weights.
 *
 * Convolutions with fewer than MIN_CHANNELS on either side (the first and last layers, which map
 * to and from the 3–4 latent or pixel channels) stay float: they cost almost nothing and carry
 * the output's precision. Everything else (norms, attention, elementwise) is untouched.
 */

const MIN_CHANNELS = 16;

/**
 * The convolutions offsetConvWeights stores for ONNX Runtime's GEMM path: kernel times of single
 * QLinearConvs (ORT 1.30, Xeon with AMX, same output bytes both ways), GEMM path over symmetric
 * kernels: 3x3 at SD 1.5 UNet shapes 320-2560 channels in 0.42-0.54x, 1x1 640 -> 320 0.68x and
 * VAE 512 -> 512 at 64² 0.46x; but 256 -> 256 at 256² 1.03x, 128 -> 128 at 512² 1.82x, TAESD's
 * 64 channels 1.5-2.9x and 1x1 320 -> 320 1.72x. So: many output channels and a deep product.
 */
const GEMM_PATH = { minOutChannels: 320, minDepth: 640 } as const;

/**
 * How weights are stored, chosen per CPU (src/onnx/cpu-features.ts), activations always uint8:
 * - u8s8: int8 weights, ±127. x86 without VNNI multiplies uint8 by int8 with vpmaddubsw, which
 *   adds pairs of products into 16 bits with saturation (255·127·2 > 32767), so this format is
 *   exact only with VNNI (and on ARM).
 * - u8u8: the same ±127 grid stored as uint8 with zero point 128; ONNX Runtime's u8×u8 kernels
 *   widen to 16 bits before multiplying, so the integer sums are exact on every x86 CPU and
 *   equal u8s8's on VNNI. Costs kernel speed where VNNI would not have saturated.
 * - u8s7: ONNX Runtime's "reduce range": int8 weights within ±63, so u8·s7 pairs stay below
 *   32767 on the fast kernels, at one bit less weight precision.
 */
export const INT8_FORMATS = ['u8s8', 'u8u8', 'u8s7'] as const;
export type Int8Format = (typeof INT8_FORMATS)[number];

const UINT8_ZERO = 128;

/** A format's symmetric weight grid: values within ±bound, stored as elemType around zeroPoint. */
export function weightGrid(format: Int8Format): { bound: number; elemType: number; zeroPoint: number } {
  const uint8 = format === 'u8u8';
  return { bound: format === 'u8s7' ? 63 : 127, elemType: uint8 ? ElemType.UINT8 : ElemType.INT8, zeroPoint: uint8 ? UINT8_ZERO : 0 };
}

const weightMax = (format: Int8Format): number => weightGrid(format).bound;
const GRAPH = { node: 1, initializer: 5, output: 12 } as const;

export interface ConvTarget {
  node: NodeProto;
  weight: InitializerInfo;
  bias: InitializerInfo | undefined;
}

export interface MatMulTarget {
  node: NodeProto;
  weight: InitializerInfo;
}

export interface QuantizationTargets {
  convs: ConvTarget[];
  matmuls: MatMulTarget[];
}

/** Activation range of one tensor, as recorded by the calibration run. */
export interface Range {
  min: number;
  max: number;
}

export interface QuantizedModel {
  model: Uint8Array;
  convs: number;
  matmuls: number;
}

export class QuantizationError extends Error {}

const isFloat32 = (init: InitializerInfo | undefined): init is InitializerInfo => init?.elemType === ElemType.FLOAT;

export function quantizationTargets(graph: GraphProto): QuantizationTargets {
  const inits = new Map(initializers(graph).map((i) => [i.name, i]));
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const convs: ConvTarget[] = [];
  const matmuls: MatMulTarget[] = [];
  for (const node of graph.nodes) {
    const weight = inits.get(node.inputs[1] ?? '');
    if (!isFloat32(weight)) continue;
    if (node.opType === 'Conv' && weight.dims.length === 4) {
      const [outC = 0, inPerGroup = 0] = weight.dims;
      if ((intAttr(node, 'group') ?? 1) !== 1 || outC < MIN_CHANNELS || inPerGroup < MIN_CHANNELS) continue;
      if (graphOutputs.has(node.outputs[0] ?? '')) continue;
      const bias = node.inputs[2] ? inits.get(node.inputs[2]) : undefined;
      if (node.inputs[2] && !isFloat32(bias)) continue;
      convs.push({ node, weight, bias });
    } else if (node.opType === 'MatMul' && weight.dims.length === 2) {
      matmuls.push({ node, weight });
    }
  }
  return { convs, matmuls };
}

/** The activations whose ranges the convolutions need: each one's input and output. */
export function convActivations(targets: QuantizationTargets): string[] {
  return [...new Set(targets.convs.flatMap((c) => [c.node.inputs[0]!, c.node.outputs[0]!]))];
}

export const rangeOutputNames = (activation: string): { min: string; max: string } => ({
  min: `${activation}::diffuse_min`,
  max: `${activation}::diffuse_max`,
});

function scalarFloatOutput(name: string): Message {
  // ValueInfoProto{name, type{tensor_type{elem_type FLOAT, shape{}}}}
  const shape = new Message([]);
  const tensorType = new Message([]);
  tensorType.setInt(1, ElemType.FLOAT);
  tensorType.setMessage(2, shape);
  const type = new Message([]);
  type.setMessage(1, tensorType);
  const value = new Message([]);
  value.setString(1, name);
  value.setMessage(2, type);
  return value;
}

/**
 * The calibration graph: the same model plus, for every convolution activation, its minimum and
 * maximum as extra scalar outputs (ReduceMin/ReduceMax over the whole tensor, so nothing large
 * ever leaves ONNX Runtime).
 */
export function addRangeOutputs(model: Uint8Array): { model: Uint8Array; activations: string[] } {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  const activations = convActivations(quantizationTargets(graph));
  const nodes: Message[] = [];
  const outputs: Message[] = [];
  for (const activation of activations) {
    const names = rangeOutputNames(activation);
    for (const [op, out] of [['ReduceMin', names.min], ['ReduceMax', names.max]] as const) {
      nodes.push(makeNode(op, `${out}/reduce`, [activation], [`${out}/raw`], [intAttribute('keepdims', 0)]));
      nodes.push(makeNode('Cast', `${out}/cast`, [`${out}/raw`], [out], [intAttribute('to', ElemType.FLOAT)]));
      outputs.push(scalarFloatOutput(out));
    }
  }
  graph.msg.append(GRAPH.node, nodes.map((n) => messageField(GRAPH.node, n)));
  graph.msg.append(GRAPH.output, outputs.map((o) => messageField(GRAPH.output, o)));
  return { model: proto.encode(), activations };
}

/** Per-channel symmetric weights within ±qmax along rows or columns of a [rows, cols] view: scales and values. */
function quantizeSymmetric(values: Float32Array, rows: number, cols: number, perRow: boolean, qmax: number): { q: Int8Array; scales: Float32Array } {
  const channels = perRow ? rows : cols;
  const amax = new Float32Array(channels);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const ch = perRow ? r : c;
      const a = Math.abs(values[r * cols + c]!);
      if (a > amax[ch]!) amax[ch] = a;
    }
  }
  // An all-zero channel gets scale 1: its values quantize to 0 either way, and no division by 0.
  const scales = Float32Array.from(amax, (a) => (a > 0 ? a / qmax : 1));
  const q = new Int8Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = scales[perRow ? r : c]!;
      q[r * cols + c] = Math.max(-qmax, Math.min(qmax, Math.round(values[r * cols + c]! / s)));
    }
  }
  return { q, scales };
}

/** uint8 scale and zero point covering [min, max] and 0 (zero must be exact: padding is zeros). */
export function activationQuantization(range: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(range.min, 0);
  const hi = Math.max(range.max, 0);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale: Math.fround(scale), zeroPoint: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
}

const initializerName = (tensor: Message): string => tensor.string(TENSOR.name) ?? '';

const bytesOf = (a: Int8Array | Int32Array | Uint8Array | Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Quantized weights and their per-channel zero points as `format` stores them. */
function storedWeights(q: Int8Array, channels: number, format: Int8Format): { elemType: number; data: Uint8Array; zeroPoints: Uint8Array } {
  if (format === 'u8u8') {
    return { elemType: ElemType.UINT8, data: Uint8Array.from(q, (v) => v + UINT8_ZERO), zeroPoints: new Uint8Array(channels).fill(UINT8_ZERO) };
  }
  return { elemType: ElemType.INT8, data: bytesOf(q), zeroPoints: new Uint8Array(channels) };
}

/** int8 weights within ±127 stored as value - 1 with zero point -1 (so within [-128, 126]). */
function offsetWeights(q: Int8Array, channels: number): { elemType: number; data: Uint8Array; zeroPoints: Uint8Array } {
  return { elemType: ElemType.INT8, data: bytesOf(Int8Array.from(q, (v) => v - 1)), zeroPoints: bytesOf(new Int8Array(channels).fill(-1)) };
}

class GraphWriter {
  readonly nodes: Message[] = [];
  private readonly inits: Message[] = [];
  private uid = 0;

  constructor(readonly graph: GraphProto) {}

  name(base: string): string {
    return `${base}::q${this.uid++}`;
  }

  init(base: string, elemType: number, dims: readonly number[], data: Uint8Array): string {
    const name = this.name(base);
    this.inits.push(rawInitializer(name, elemType, dims, data));
    return name;
  }

  floats(base: string, dims: readonly number[], values: Float32Array): string {
    const name = this.name(base);
    this.inits.push(floatInitializer(name, ElemType.FLOAT, dims, values));
    return name;
  }

  finish(): void {
    for (const init of this.inits) appendInitializer(this.graph, init);
  }
}

interface ActivationQdq {
  quantized: string;
  scale: string;
  zeroPoint: string;
}

export interface QuantizeOptions {
  /** Write the weights to this file instead of into the graph. */
  data?: ExternalData;
  /**
   * Store the weights of wide int8 convolutions (GEMM_PATH) one below their values with zero
   * point -1: the same numbers. ONNX Runtime runs a convolution whose weight zero point is 0 on
   * its symmetric kernels (VNNI) and any other as im2col and its u8s8 GEMM, which takes AMX's
   * tiles where the CPU has them. Not for u8u8 (uint8 weights already have zero point 128).
   */
  offsetConvWeights?: boolean;
}

/**
 * `ranges` holds the calibrated activation ranges the convolutions need; without them (undefined)
 * only the MatMuls are quantized, which needs no calibration. `format` is how weights are stored
 * (see INT8_FORMATS); `options` where (QuantizeOptions).
 */
export function quantizeInt8(model: Uint8Array, modelDir: string, ranges: ReadonlyMap<string, Range> | undefined, format: Int8Format, options: QuantizeOptions = {}): QuantizedModel {
  if (options.offsetConvWeights && format === 'u8u8') throw new QuantizationError('offset convolution weights need int8 weights (u8s8 or u8s7), not u8u8');
  const proto = ModelProto.decode(model);
  if (defaultOpset(proto) < 13) throw new QuantizationError(`it needs opset 13 or newer (per-channel DequantizeLinear); this graph imports opset ${defaultOpset(proto)}`);
  const graph = proto.graph;
  const found = quantizationTargets(graph);
  const targets = ranges ? found : { convs: [], matmuls: found.matmuls };
  if (targets.convs.length + targets.matmuls.length === 0) throw new QuantizationError('it has no float32 convolution or MatMul weights (int8 needs a float32 export)');
  const w = new GraphWriter(graph);
  // Nodes to insert before a given node (its inputs' Q/DQ) and after it (its output's Q/DQ).
  const before = new Map<Message, Message[]>();
  const after = new Map<Message, Message[]>();
  const replaced = new Map<Message, Message>();
  const dropped = new Set<Message>();
  const quantizedInputs = new Map<string, ActivationQdq>();
  const params = new Map<string, { scale: number; scaleName: string; zeroPointName: string }>();

  const push = (map: Map<Message, Message[]>, key: Message, ...nodes: Message[]): void => {
    map.set(key, [...(map.get(key) ?? []), ...nodes]);
  };
  const rangeOf = (activation: string): Range => {
    const r = ranges?.get(activation);
    if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max)) throw new QuantizationError(`calibration recorded no range for ${activation}`);
    return r;
  };
  const activationParams = (activation: string): { scale: number; scaleName: string; zeroPointName: string } => {
    const known = params.get(activation);
    if (known) return known;
    const { scale, zeroPoint } = activationQuantization(rangeOf(activation));
    const made = {
      scale,
      scaleName: w.floats(`${activation}/scale`, [], Float32Array.of(scale)),
      zeroPointName: w.init(`${activation}/zero_point`, ElemType.UINT8, [], Uint8Array.of(zeroPoint)),
    };
    params.set(activation, made);
    return made;
  };

  for (const { node, weight, bias } of targets.convs) {
    const input = node.inputs[0]!;
    const output = node.outputs[0]!;
    const [outC = 0, ...kernel] = weight.dims;
    const perChannel = kernel.reduce((a, b) => a * b, 1);
    const { q, scales } = quantizeSymmetric(readFloatInitializer(weight, modelDir), outC, perChannel, true, weightMax(format));

    // One QuantizeLinear per activation, where it is produced; a DequantizeLinear per consumer
    // (ORT fuses a DQ → Conv → Q group only when the DQ feeds that one node).
    let qin = quantizedInputs.get(input);
    const inParams = activationParams(input);
    if (!qin) {
      qin = { quantized: w.name(`${input}/quantized`), scale: inParams.scaleName, zeroPoint: inParams.zeroPointName };
      quantizedInputs.set(input, qin);
      push(before, node.msg, makeNode('QuantizeLinear', w.name(`${input}/Q`), [input, qin.scale, qin.zeroPoint], [qin.quantized]));
    }
    const dqIn = w.name(`${input}/dequantized`);
    push(before, node.msg, makeNode('DequantizeLinear', w.name(`${input}/DQ`), [qin.quantized, qin.scale, qin.zeroPoint], [dqIn]));

    const gemmPath = options.offsetConvWeights && outC >= GEMM_PATH.minOutChannels && perChannel >= GEMM_PATH.minDepth;
    const stored = gemmPath ? offsetWeights(q, outC) : storedWeights(q, outC, format);
    const qWeight = w.init(`${weight.name}/int8`, stored.elemType, weight.dims, stored.data);
    const wScale = w.floats(`${weight.name}/scale`, [outC], scales);
    const wZero = w.init(`${weight.name}/zero_point`, stored.elemType, [outC], stored.zeroPoints);
    const dqWeight = w.name(`${weight.name}/dequantized`);
    push(before, node.msg, makeNode('DequantizeLinear', w.name(`${weight.name}/DQ`), [qWeight, wScale, wZero], [dqWeight], [intAttribute('axis', 0)]));

    const convInputs = [dqIn, dqWeight];
    if (bias) {
      // int32 with scale input_scale × weight_scale[c]: what QLinearConv accumulates into.
      const inScale = inParams.scale;
      const values = readFloatInitializer(bias, modelDir);
      const bScale = Float32Array.from(scales, (s) => Math.fround(inScale * s));
      const bq = Int32Array.from(values, (v, c) => Math.max(-2147483647, Math.min(2147483647, Math.round(v / bScale[c]!))));
      const qBias = w.init(`${bias.name}/int32`, ElemType.INT32, [outC], bytesOf(bq));
      const bScaleName = w.floats(`${bias.name}/scale`, [outC], bScale);
      const dqBias = w.name(`${bias.name}/dequantized`);
      push(before, node.msg, makeNode('DequantizeLinear', w.name(`${bias.name}/DQ`), [qBias, bScaleName], [dqBias], [intAttribute('axis', 0)]));
      convInputs.push(dqBias);
    }
    const outParams = activationParams(output);
    const raw = w.name(`${output}/float`);
    const qOut = w.name(`${output}/quantized`);
    node.inputs = convInputs;
    node.outputs = [raw];
    push(after, node.msg,
      makeNode('QuantizeLinear', w.name(`${output}/Q`), [raw, outParams.scaleName, outParams.zeroPointName], [qOut]),
      makeNode('DequantizeLinear', w.name(`${output}/DQ`), [qOut, outParams.scaleName, outParams.zeroPointName], [output]),
    );
  }

  const consumers = new Map<string, NodeProto[]>();
  for (const node of graph.nodes) for (const i of node.inputs) consumers.set(i, [...(consumers.get(i) ?? []), node]);
  const inits = new Map(initializers(graph).map((i) => [i.name, i]));
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  for (const { node, weight } of targets.matmuls) {
    const [k = 0, n = 0] = weight.dims;
    const { q, scales } = quantizeSymmetric(readFloatInitializer(weight, modelDir), k, n, false, weightMax(format));
    const stored = storedWeights(q, n, format);
    // An int8 B's zero point is 0, the input's default; uint8 needs its 128 spelled out.
    const zeroPoint = format === 'u8u8' ? w.init(`${weight.name}/zero_point`, ElemType.UINT8, [n], stored.zeroPoints) : '';
    const inputs = [node.inputs[0]!, w.init(`${weight.name}/int8`, stored.elemType, [k, n], stored.data), w.floats(`${weight.name}/scale`, [n], scales), zeroPoint];
    let output = node.outputs[0]!;
    // Fold a following bias Add ([n] weight, this MatMul its only input) into the node.
    const next = consumers.get(output);
    const add = next?.length === 1 && next[0]!.opType === 'Add' && !graphOutputs.has(output) ? next[0]! : undefined;
    const biasName = add?.inputs.find((i) => i !== output);
    const bias = biasName ? inits.get(biasName) : undefined;
    if (add && isFloat32(bias) && bias.dims.length === 1 && bias.dims[0] === n) {
      inputs.push(bias.name);
      output = add.outputs[0]!;
      dropped.add(add.msg);
    }
    replaced.set(node.msg, makeNode('DynamicQuantizeMatMul', `${node.name}/DynamicQuantizeMatMul`, inputs, [output], [], MS_DOMAIN));
  }

  const fields = graph.msg.all(GRAPH.node).flatMap((f) => {
    const msg = f.child ?? Message.decode(f.data);
    if (dropped.has(msg)) return [];
    const self = replaced.get(msg) ?? msg;
    return [...(before.get(msg) ?? []), self, ...(after.get(msg) ?? [])].map((m) => messageField(GRAPH.node, m));
  });
  graph.msg.set(GRAPH.node, fields);
  // The float weights and biases now quantized are read by nothing: drop them (the file and ORT's
  // memory would otherwise hold both copies).
  const quantized = new Set([...targets.convs.flatMap((c) => [c.weight.name, c.bias?.name]), ...targets.matmuls.map((m) => m.weight.name)]);
  const used = new Set(graph.nodes.flatMap((n) => n.inputs));
  graph.msg.set(
    GRAPH.initializer,
    graph.msg.all(GRAPH.initializer).filter((f) => {
      const name = initializerName(f.child ?? Message.decode(f.data));
      return !quantized.has(name) || used.has(name);
    }),
  );
  w.finish();
  if (targets.matmuls.length > 0) ensureOpsetImport(proto, MS_DOMAIN);
  if (options.data) moveInlineDataToFile(graph, options.data);
  return { model: proto.encode(), convs: targets.convs.length, matmuls: targets.matmuls.length };
}
