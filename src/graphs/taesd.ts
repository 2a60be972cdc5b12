import { ElemType } from '../onnx/proto.js';
import { CheckpointError } from './errors.js';
import type { Keys } from './detect.js';
import { conv2d, scopeOf, upsampleNearest, type Net } from './layers.js';
import { GraphBuilder, type WeightType } from './onnx-builder.js';
import type { ComponentWeights, WeightSource } from './weights.js';

/**
 * TAESD (madebyollin/taesd), the tiny autoencoder of SD's latent space: a Sequential of 3x3
 * convolutions, ReLUs, residual Blocks (conv, ReLU, conv, ReLU, conv, plus the input, then ReLU)
 * and nearest x2 upsamplings, as diffusers' AutoencoderTiny runs it:
 *   decoder: tanh(z / 3) * 3, conv, ReLU, blocks, [upsample, conv without bias, blocks]..., conv
 *            -> image in [0, 1], returned as x * 2 - 1 (diffusers' convention);
 *   encoder: (x + 1) / 2, conv, blocks, [stride-2 conv without bias, blocks]..., conv -> latents.
 * Its latents are the UNet's own (scaling factor 1). The structure is read off the weights,
 * whichever way they are named: diffusers' `decoder.layers.N` / `encoder.layers.N`, or the
 * original taesd_decoder / taesd_encoder files, whose bare indices run one ahead in the decoder
 * (its Sequential starts with the clamp). Graph weights carry diffusers' names.
 */

export type TinySide = 'decoder' | 'encoder';

/** One parameterised layer, at its diffusers index. */
export type TinyLayer = { kind: 'conv'; index: number; in: number; out: number; bias: boolean } | { kind: 'block'; index: number; in: number; out: number };

export interface TinyPlan {
  side: TinySide;
  layers: TinyLayer[];
  /** The latents' channels: the decoder's input, the encoder's output. */
  latentChannels: number;
}

/** Where a side's tensors are: the key prefix and how far its indices run ahead of diffusers'. */
export interface TinyLayout {
  prefix: string;
  offset: number;
}

export const DIFFUSERS_LAYOUT: Record<TinySide, TinyLayout> = { decoder: { prefix: 'decoder.layers.', offset: 0 }, encoder: { prefix: 'encoder.layers.', offset: 0 } };
export const ORIGINAL_LAYOUT: Record<TinySide, TinyLayout> = { decoder: { prefix: '', offset: 1 }, encoder: { prefix: '', offset: 0 } };

export function tinyLocator(side: TinySide, layout: TinyLayout): (name: string) => WeightSource | undefined {
  const pattern = new RegExp(`^${side}\\.layers\\.(\\d+)\\.(.+)$`);
  return (name) => {
    const m = pattern.exec(name);
    return m ? { key: `${layout.prefix}${Number(m[1]) + layout.offset}.${m[2]}` } : undefined;
  };
}

function refuse(keys: Keys, side: TinySide, why: string): never {
  throw new CheckpointError(`${keys.store.label}: not a TAESD ${side} (${why}); pass taesd_decoder/taesd_encoder weights or a diffusers AutoencoderTiny`);
}

/**
 * The layers of one side, checked against TAESD's pattern: every index follows the previous one
 * except where a parameterless layer sits between (the decoder's ReLU after its first
 * convolution and the upsampling before each convolution without bias).
 */
export function readTinyPlan(keys: Keys, side: TinySide, layout: TinyLayout): TinyPlan {
  const layers: TinyLayer[] = keys.indices(layout.prefix).map((stored) => {
    const at = `${layout.prefix}${stored}.`;
    const index = stored - layout.offset;
    if (keys.has(`${at}conv.0.weight`)) {
      const [out, inC] = keys.shape(`${at}conv.0.weight`) as [number, number];
      return { kind: 'block', index, in: inC, out };
    }
    if (!keys.has(`${at}weight`)) refuse(keys, side, `layer ${stored} is neither a convolution nor a block`);
    const shape = keys.shape(`${at}weight`);
    if (shape.length !== 4 || shape[2] !== 3 || shape[3] !== 3) refuse(keys, side, `layer ${stored} is not a 3x3 convolution`);
    return { kind: 'conv', index, in: shape[1]!, out: shape[0]!, bias: keys.has(`${at}bias`) };
  });
  const first = layers[0];
  const last = layers[layers.length - 1];
  if (!first || !last || first.kind !== 'conv' || !first.bias || first.index !== 0 || last.kind !== 'conv' || !last.bias || layers.length < 3) {
    refuse(keys, side, 'it does not start and end with a convolution');
  }
  layers.forEach((layer, i) => {
    if (i === 0) return;
    const gap = side === 'decoder' && (i === 1 || (layer.kind === 'conv' && !layer.bias)) ? 2 : 1;
    if (layer.index !== layers[i - 1]!.index + gap) refuse(keys, side, `layer ${layer.index + layout.offset} is out of place`);
    if (layer.kind === 'conv' && layer.bias && i !== layers.length - 1) refuse(keys, side, `layer ${layer.index + layout.offset} is a convolution with a bias inside the network`);
  });
  return { side, layers, latentChannels: side === 'decoder' ? first.in : last.out };
}

function block(net: Net, path: string, x: string, layer: Extract<TinyLayer, { kind: 'block' }>): string {
  const { g } = net;
  const scope = scopeOf(path);
  let h = g.op('Relu', [conv2d(net, `${path}.conv.0`, x, layer.in, layer.out)], scope);
  h = g.op('Relu', [conv2d(net, `${path}.conv.2`, h, layer.out, layer.out)], scope);
  h = conv2d(net, `${path}.conv.4`, h, layer.out, layer.out);
  const skip = layer.in === layer.out ? x : conv2d(net, `${path}.skip`, x, layer.in, layer.out, { bias: false, pads: [0, 0, 0, 0] });
  return g.op('Relu', [g.op('Add', [h, skip], scope)], scope);
}

/** latent_sample [batch, C, h, w] (the UNet's latents) -> sample [batch, 3, H, W] in about [-1, 1]. */
export function buildTinyDecoder(w: ComponentWeights, plan: TinyPlan, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('vae_decoder', weightType);
  const net: Net = { g, w };
  const latents = g.input('latent_sample', ElemType.FLOAT, ['batch_size', plan.latentChannels, 'height_latent', 'width_latent']);
  const three = g.floats([3], []);
  let x = g.op('Mul', [g.op('Tanh', [g.op('Div', [latents, three], '/decoder')], '/decoder'), three], '/decoder');
  plan.layers.forEach((layer, i) => {
    const path = `decoder.layers.${layer.index}`;
    if (layer.kind === 'block') {
      x = block(net, path, x, layer);
      return;
    }
    if (i > 0 && !layer.bias) x = upsampleNearest(g, x, scopeOf(`decoder.layers.${layer.index - 1}`));
    x = conv2d(net, path, x, layer.in, layer.out, { bias: layer.bias });
    if (i === 0) x = g.op('Relu', [x], scopeOf(`decoder.layers.${layer.index + 1}`));
  });
  const image = g.op('Sub', [g.op('Mul', [x, g.floats([2], [])], '/decoder'), g.floats([1], [])], '/decoder');
  g.output(image, 'sample', ElemType.FLOAT, ['batch_size', plan.layers[plan.layers.length - 1]!.out, 'height', 'width']);
  return g;
}

/** sample [batch, 3, H, W] in [-1, 1] -> latent_sample [batch, C, h, w] (the UNet's latents, no sampling). */
export function buildTinyEncoder(w: ComponentWeights, plan: TinyPlan, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('vae_encoder', weightType);
  const net: Net = { g, w };
  const first = plan.layers[0]!;
  const image = g.input('sample', ElemType.FLOAT, ['batch_size', first.in, 'height', 'width']);
  let x = g.op('Div', [g.op('Add', [image, g.floats([1], [])], '/encoder'), g.floats([2], [])], '/encoder');
  plan.layers.forEach((layer, i) => {
    const path = `encoder.layers.${layer.index}`;
    if (layer.kind === 'block') x = block(net, path, x, layer);
    else x = conv2d(net, path, x, layer.in, layer.out, i > 0 && !layer.bias ? { bias: false, stride: 2 } : {});
  });
  g.output(x, 'latent_sample', ElemType.FLOAT, ['batch_size', plan.latentChannels, 'height_latent', 'width_latent']);
  return g;
}
