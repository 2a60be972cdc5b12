import { INNER_NORM_EPS } from './model-config.js';
import { attention, conv2d, fromTokens, gelu, groupNorm, layerNorm, linear, scopeOf, silu, toTokens, upsampleNearest, type Net } from './layers.js';

/**
 * The blocks the UNet and the VAE share, as diffusers writes them: ResnetBlock2D, the
 * cross-attention Transformer2DModel with its BasicTransformerBlocks, the VAE's single-head
 * spatial attention, and the down/upsampling convolutions. Paths are diffusers' module paths.
 */

export interface Norm {
  groups: number;
  eps: number;
}

/**
 * ResnetBlock2D: norm1, SiLU, conv1, (+ time_emb_proj(SiLU(temb)) per channel), norm2, SiLU,
 * conv2, plus the input (through a 1x1 conv_shortcut when the width changes).
 * `temb` is the already activated time embedding [n, tembDim], or undefined (the VAE).
 */
export function resnet(net: Net, path: string, x: string, inChannels: number, outChannels: number, norm: Norm, temb?: { value: string; width: number }): string {
  const { g } = net;
  const scope = scopeOf(path);
  let h = silu(g, groupNorm(net, `${path}.norm1`, x, inChannels, norm.groups, norm.eps), scope);
  h = conv2d(net, `${path}.conv1`, h, inChannels, outChannels);
  if (temb) {
    const projected = linear(net, `${path}.time_emb_proj`, temb.value, temb.width, outChannels);
    h = g.op('Add', [h, g.op('Unsqueeze', [projected, g.ints([2, 3])], scope)], scope);
  }
  h = silu(g, groupNorm(net, `${path}.norm2`, h, outChannels, norm.groups, norm.eps), scope);
  h = conv2d(net, `${path}.conv2`, h, outChannels, outChannels);
  const skip = inChannels === outChannels ? x : conv2d(net, `${path}.conv_shortcut`, x, inChannels, outChannels);
  return g.op('Add', [skip, h], scope);
}

export interface CrossAttention {
  heads: number;
  context: string;
  contextDim: number;
  /** How many BasicTransformerBlocks (SD 1.x/2.x: 1). */
  depth: number;
  groups: number;
}

/**
 * Transformer2DModel: GroupNorm (eps 1e-6), proj_in, the blocks over the H*W tokens, proj_out,
 * plus the input. SD 1.x's proj_in/out are 1x1 convolutions, SD 2.x's Linear layers; on the
 * token layout both are the same matrix product, so one path serves both.
 */
export function transformer2d(net: Net, path: string, x: string, channels: number, attn: CrossAttention): string {
  const { g } = net;
  const scope = scopeOf(path);
  const normed = groupNorm(net, `${path}.norm`, x, channels, attn.groups, INNER_NORM_EPS);
  let tokens = linear(net, `${path}.proj_in`, toTokens(g, normed, channels, scope), channels, channels);
  for (let d = 0; d < attn.depth; d++) tokens = basicTransformerBlock(net, `${path}.transformer_blocks.${d}`, tokens, channels, attn);
  tokens = linear(net, `${path}.proj_out`, tokens, channels, channels);
  return g.op('Add', [fromTokens(g, tokens, x, scope), x], scope);
}

/** Self-attention, cross-attention on the text, GEGLU feed-forward; each pre-normed and residual. */
function basicTransformerBlock(net: Net, path: string, x: string, width: number, attn: CrossAttention): string {
  const { g } = net;
  const scope = scopeOf(path);
  const eps = 1e-5;
  let h = layerNorm(net, `${path}.norm1`, x, width, eps);
  x = g.op('Add', [multiHead(net, `${path}.attn1`, h, h, width, width, attn.heads), x], scope);
  h = layerNorm(net, `${path}.norm2`, x, width, eps);
  x = g.op('Add', [multiHead(net, `${path}.attn2`, h, attn.context, width, attn.contextDim, attn.heads), x], scope);
  h = layerNorm(net, `${path}.norm3`, x, width, eps);
  return g.op('Add', [geglu(net, `${path}.ff`, h, width), x], scope);
}

/** diffusers' Attention without biases on q/k/v (the UNet's): to_q, to_k, to_v, attention, to_out.0. */
function multiHead(net: Net, path: string, x: string, context: string, width: number, contextDim: number, heads: number): string {
  if (width % heads !== 0) throw new RangeError(`${path}: width ${width} does not split into ${heads} heads`);
  const q = linear(net, `${path}.to_q`, x, width, width, false);
  const k = linear(net, `${path}.to_k`, context, contextDim, width, false);
  const v = linear(net, `${path}.to_v`, context, contextDim, width, false);
  return linear(net, `${path}.to_out.0`, attention(net.g, scopeOf(path), q, k, v, heads, width / heads), width, width);
}

/** FeedForward with GEGLU: proj to 2 x 4 x width, value * gelu(gate), back to width. */
function geglu(net: Net, path: string, x: string, width: number): string {
  const { g } = net;
  const inner = 4 * width;
  const scope = scopeOf(`${path}.net.0`);
  const projected = linear(net, `${path}.net.0.proj`, x, width, 2 * inner);
  const [value, gate] = g.node('Split', [projected, g.ints([inner, inner])], scope, { axis: -1 }, 2) as [string, string];
  return linear(net, `${path}.net.2`, g.op('Mul', [value, gelu(g, gate, scope)], scope), inner, width);
}

/**
 * The VAE's mid-block attention (diffusers' Attention with one head over the channels):
 * GroupNorm, q/k/v with biases, attention over the H*W positions, to_out.0, plus the input.
 */
export function spatialSelfAttention(net: Net, path: string, x: string, channels: number, norm: Norm): string {
  const { g } = net;
  const scope = scopeOf(path);
  const tokens = toTokens(g, groupNorm(net, `${path}.group_norm`, x, channels, norm.groups, norm.eps), channels, scope);
  const q = linear(net, `${path}.to_q`, tokens, channels, channels);
  const k = linear(net, `${path}.to_k`, tokens, channels, channels);
  const v = linear(net, `${path}.to_v`, tokens, channels, channels);
  const out = linear(net, `${path}.to_out.0`, attention(g, scope, q, k, v, 1, channels), channels, channels);
  return g.op('Add', [fromTokens(g, out, x, scope), x], scope);
}

/**
 * Downsample2D with a stride-2 3x3 convolution: the UNet pads one pixel on every side; the
 * VAE's encoder pads only the right and bottom (`asymmetric`), as LDM's Downsample does.
 */
export function downsample(net: Net, path: string, x: string, channels: number, asymmetric: boolean): string {
  return conv2d(net, `${path}.conv`, x, channels, channels, { stride: 2, pads: asymmetric ? [0, 0, 1, 1] : [1, 1, 1, 1] });
}

/** Upsample2D: nearest x2 (or to `sizeOf`'s size), then a 3x3 convolution. */
export function upsample(net: Net, path: string, x: string, channels: number, sizeOf?: string): string {
  return conv2d(net, `${path}.conv`, upsampleNearest(net.g, x, scopeOf(path), sizeOf), channels, channels);
}
