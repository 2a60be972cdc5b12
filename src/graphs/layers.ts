import type { GraphBuilder } from './onnx-builder.js';
import type { ComponentWeights } from './weights.js';

/**
 * The layers Stable Diffusion's networks are made of, as ONNX nodes computing what the torch
 * modules compute (diffusers' and transformers' forward passes), in the op patterns torch.onnx
 * exports them as: a graph built here looks to ONNX Runtime's optimisers, and to diffuse's own
 * graph passes (attention fusion, CLIP skip), like an optimum export.
 *
 * Every layer takes the module path its weights live under (`down_blocks.0.resnets.1`); that
 * path also names its nodes.
 */

export interface Net {
  g: GraphBuilder;
  w: ComponentWeights;
}

/** torch.onnx's node scope for a module path: `down_blocks.0.resnets.1.conv1` -> `/down_blocks.0/resnets.1/conv1`. */
export function scopeOf(path: string): string {
  return `/${path.replace(/\.(?=\d)/g, '\u0000').split('.').join('/').replace(/\u0000/g, '.')}`;
}

/** torch.nn.Linear over the last axis: x [..., in] -> [..., out]. */
export function linear(net: Net, path: string, x: string, inFeatures: number, outFeatures?: number, bias = true): string {
  const weight = net.g.weight(net.w.take(`${path}.weight`, 'linear', [outFeatures, inFeatures]));
  const scope = scopeOf(path);
  const y = net.g.op('MatMul', [x, weight], scope);
  if (!bias) return y;
  const out = net.w.shape(`${path}.weight`)[0];
  return net.g.op('Add', [net.g.weight(net.w.take(`${path}.bias`, 'as-is', [out])), y], scope);
}

export interface ConvOptions {
  stride?: number;
  /** [top, left, bottom, right]; default: "same" padding for odd kernels. */
  pads?: [number, number, number, number];
  /** Default true; TAESD's strided and upsampling convolutions have none. */
  bias?: boolean;
  /** Default 1; with groups, inChannels is one group's (the weight's second side: 1 for a depthwise convolution). */
  groups?: number;
  /** Default 1; the default pads then cover the dilated kernel. */
  dilation?: number;
}

/** torch.nn.Conv2d: x [N, in, H, W] -> [N, out, H', W']. */
export function conv2d(net: Net, path: string, x: string, inChannels: number, outChannels?: number, options: ConvOptions = {}): string {
  const shape = net.w.shape(`${path}.weight`);
  const [out, , kh, kw] = shape;
  const weight = net.g.weight(net.w.take(`${path}.weight`, 'as-is', [outChannels, inChannels, undefined, undefined]));
  const bias = options.bias === false ? [] : [net.g.weight(net.w.take(`${path}.bias`, 'as-is', [out]))];
  const dilation = options.dilation ?? 1;
  const [ph, pw] = [((kh! - 1) * dilation) / 2, ((kw! - 1) * dilation) / 2];
  const pads = options.pads ?? [ph, pw, ph, pw];
  const stride = options.stride ?? 1;
  return net.g.op('Conv', [x, weight, ...bias], scopeOf(path), { kernel_shape: [kh!, kw!], pads, strides: [stride, stride], dilations: [dilation, dilation], group: options.groups ?? 1 });
}

/**
 * torch.nn.GroupNorm on [N, C, H, W], as torch.onnx exports it: the channels reshaped into
 * `groups` rows, InstanceNormalization over each row, the affine scale and shift per channel.
 */
export function groupNorm(net: Net, path: string, x: string, channels: number, groups: number, eps: number): string {
  if (channels % groups !== 0) throw new RangeError(`${path}: ${channels} channels do not split into ${groups} groups`);
  const { g } = net;
  const scope = scopeOf(path);
  const grouped = g.op('Reshape', [x, g.ints([0, groups, -1])], scope);
  const normed = g.op('InstanceNormalization', [grouped, g.floats(new Array<number>(groups).fill(1)), g.floats(new Array<number>(groups).fill(0))], scope, { epsilon: { float: eps } });
  const back = g.op('Reshape', [normed, g.op('Shape', [x], scope)], scope);
  const scaled = g.op('Mul', [back, g.weight(net.w.take(`${path}.weight`, 'channels', [channels]))], scope);
  return g.op('Add', [scaled, g.weight(net.w.take(`${path}.bias`, 'channels', [channels]))], scope);
}

/** torch.nn.LayerNorm over the last axis. */
export function layerNorm(net: Net, path: string, x: string, width: number, eps: number): string {
  const scale = net.g.weight(net.w.take(`${path}.weight`, 'as-is', [width]));
  const shift = net.g.weight(net.w.take(`${path}.bias`, 'as-is', [width]));
  return net.g.op('LayerNormalization', [x, scale, shift], scopeOf(path), { axis: -1, epsilon: { float: eps } });
}

export function silu(g: GraphBuilder, x: string, scope: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [x], scope)], scope);
}

/** The exact (erf) GELU: x * 0.5 * (1 + erf(x / sqrt 2)). */
export function gelu(g: GraphBuilder, x: string, scope: string): string {
  const erf = g.op('Erf', [g.op('Div', [x, g.floats([Math.SQRT2], [])], scope)], scope);
  return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.floats([1], [])], scope)], scope), g.floats([0.5], [])], scope);
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x). */
export function quickGelu(g: GraphBuilder, x: string, scope: string): string {
  return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.floats([1.702], [])], scope)], scope)], scope);
}

/**
 * Scaled dot-product attention of q [B, S, H*D] over k, v [B, L, H*D], in torch's SDPA export
 * pattern: heads split by Reshape [B, -1, H, D] and Transpose, both q and k scaled by
 * sqrt(1/sqrt(D)), Softmax over the last axis, heads merged back to [B, S, H*D]. That is the
 * pattern src/onnx/fuse-attention.ts turns into ONNX Runtime's fused MultiHeadAttention, so
 * `--attention fused|plain` means for a built UNet what it means for an optimum export. `mask`
 * (added to the scores, e.g. CLIP's causal mask) leaves the pattern unfused.
 */
export function attention(g: GraphBuilder, scope: string, q: string, k: string, v: string, heads: number, headDim: number, mask?: string): string {
  const split = g.ints([0, -1, heads, headDim]);
  const root = g.floats([Math.sqrt(1 / Math.sqrt(headDim))], []);
  const qh = g.op('Mul', [g.op('Transpose', [g.op('Reshape', [q, split], scope)], scope, { perm: [0, 2, 1, 3] }), root], scope);
  const kh = g.op('Mul', [g.op('Transpose', [g.op('Reshape', [k, split], scope)], scope, { perm: [0, 2, 3, 1] }), root], scope);
  const vh = g.op('Transpose', [g.op('Reshape', [v, split], scope)], scope, { perm: [0, 2, 1, 3] });
  const scores = g.op('MatMul', [qh, kh], scope);
  const probs = g.op('Softmax', [mask ? g.op('Add', [scores, mask], scope) : scores], scope, { axis: -1 });
  const context = g.op('Transpose', [g.op('MatMul', [probs, vh], scope)], scope, { perm: [0, 2, 1, 3] });
  return g.op('Reshape', [context, g.ints([0, -1, heads * headDim])], scope);
}

/**
 * A text transformer's input: token rows gathered by id plus the first `length` position rows
 * (transformers' CLIP and BERT embeddings before any norm). The length comes from the ids'
 * shape, so the position rows do not depend on the token rows; it is returned for the causal mask.
 */
export function tokenAndPositionSum(net: Net, ids: string, tables: { tokens: string; positions: string }, sizes: { vocab: number; positions: number; hidden: number }, scope: string): { sum: string; length: string } {
  const { g, w } = net;
  const table = g.storedWeight(w.take(tables.tokens, 'as-is', [sizes.vocab, sizes.hidden]));
  const positions = g.storedWeight(w.take(tables.positions, 'as-is', [sizes.positions, sizes.hidden]));
  const length = g.op('Slice', [g.op('Shape', [ids], scope), g.ints([1]), g.ints([2])], scope);
  const tokens = g.toFloat(g.op('Gather', [table, ids], scope, { axis: 0 }), scope);
  const sum = g.op('Add', [tokens, g.toFloat(g.op('Slice', [positions, g.ints([0]), length, g.ints([0])], scope), scope)], scope);
  return { sum, length };
}

/** [N, C, H, W] -> [N, H*W, C], the token layout transformer blocks read. */
export function toTokens(g: GraphBuilder, x: string, channels: number, scope: string): string {
  return g.op('Transpose', [g.op('Reshape', [x, g.ints([0, channels, -1])], scope)], scope, { perm: [0, 2, 1] });
}

/** [N, H*W, C] back to the shape of `like` ([N, C, H, W]). */
export function fromTokens(g: GraphBuilder, x: string, like: string, scope: string): string {
  return g.op('Reshape', [g.op('Transpose', [x], scope, { perm: [0, 2, 1] }), g.op('Shape', [like], scope)], scope);
}

/**
 * Nearest-neighbour upsampling as torch's F.interpolate(mode="nearest"): source index
 * floor(dst * in / out). To twice the size, or to the spatial size of `sizeOf` (the UNet's skip
 * connection, which diffusers passes as upsample_size when a side is not a multiple of the
 * UNet's total downsampling).
 */
export function upsampleNearest(g: GraphBuilder, x: string, scope: string, sizeOf?: string): string {
  const attrs = { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' };
  if (!sizeOf) return g.op('Resize', [x, '', g.floats([1, 1, 2, 2])], scope, attrs);
  const batchChannels = g.op('Slice', [g.op('Shape', [x], scope), g.ints([0]), g.ints([2])], scope);
  const spatial = g.op('Slice', [g.op('Shape', [sizeOf], scope), g.ints([2]), g.ints([4])], scope);
  return g.op('Resize', [x, '', '', g.op('Concat', [batchChannels, spatial], scope, { axis: 0 })], scope, attrs);
}
