import { ElemType } from '../onnx/proto.js';
import { downsample, resnet, transformer2d, upsample, type CrossAttention, type Norm } from './blocks.js';
import { conv2d, groupNorm, linear, scopeOf, silu, type Net } from './layers.js';
import { depthAt, type UnetConfig } from './model-config.js';
import { GraphBuilder, type WeightType } from './onnx-builder.js';
import type { ComponentWeights } from './weights.js';

/**
 * diffusers' UNet2DConditionModel for SD 1.x/2.x (ε or v, 4-channel, 9-channel inpainting,
 * 5-channel depth) and SDXL with the inputs and outputs optimum exports and src/pipeline/unet.ts
 * reads: sample [batch, C, h, w], timestep float [steps] (one value broadcast over the batch, or
 * one per sample), encoder_hidden_states [batch, tokens, width], and for SDXL text_embeds
 * [batch, pooled] and time_ids [batch, 6 or 5] -> out_sample.
 */
export function buildUnet(w: ComponentWeights, config: UnetConfig, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('unet', weightType);
  const net: Net = { g, w };
  const c = config;
  const levels = c.blockOutChannels.length;
  const norm: Norm = { groups: c.normGroups, eps: c.normEps };
  const sample = g.input('sample', ElemType.FLOAT, ['batch_size', c.inChannels, 'height', 'width']);
  const timestep = g.input('timestep', ElemType.FLOAT, ['steps']);
  const context = g.input('encoder_hidden_states', ElemType.FLOAT, ['batch_size', 'sequence_length', c.crossAttentionDim]);
  const temb = timeEmbedding(net, timestep, c);
  const cross = crossAttention(c, context);

  const down = downAndMidBlocks(net, conv2d(net, 'conv_in', sample, c.inChannels, c.blockOutChannels[0]), temb, context, c);
  const skips = down.skips;
  let { x, width } = down;

  for (let i = 0; i < levels; i++) {
    const level = levels - 1 - i;
    const out = c.blockOutChannels[level]!;
    for (let j = 0; j <= c.layersPerBlock; j++) {
      const skip = skips.pop()!;
      const joined = g.op('Concat', [x, skip.value], scopeOf(`up_blocks.${i}`), { axis: 1 });
      x = resnet(net, `up_blocks.${i}.resnets.${j}`, joined, width + skip.width, out, norm, temb);
      width = out;
      if (c.upBlockTypes[i] === 'CrossAttnUpBlock2D') x = transformer2d(net, `up_blocks.${i}.attentions.${j}`, x, width, cross(level));
    }
    // Upsampled to the size of the skip connection the next block joins (diffusers' upsample_size).
    if (i < levels - 1) x = upsample(net, `up_blocks.${i}.upsamplers.0`, x, width, skips[skips.length - 1]!.value);
  }

  const normed = silu(g, groupNorm(net, 'conv_norm_out', x, width, norm.groups, norm.eps), '/conv_norm_out');
  g.output(conv2d(net, 'conv_out', normed, width, c.outChannels), 'out_sample', ElemType.FLOAT, ['batch_size', c.outChannels, 'height', 'width']);
  return g;
}

/** The attention settings of a down level's transformers (the mid block's: the last level's). */
function crossAttention(c: UnetConfig, context: string): (level: number) => CrossAttention {
  return (level) => ({ heads: c.heads[level]!, context, contextDim: c.crossAttentionDim, depth: depthAt(c, level), groups: c.normGroups });
}

/** What the down and mid blocks leave: the skip connections (conv_in's output first) and the mid block's output. */
export interface EncoderHalf {
  skips: Array<{ value: string; width: number }>;
  x: string;
  width: number;
}

/**
 * The UNet's down blocks then its mid block, from conv_in's output `x`: the half a ControlNet copies
 * (src/graphs/controlnet.ts builds it through here on its own weights; the skips are its residuals).
 */
export function downAndMidBlocks(net: Net, x: string, temb: TimeEmbedding, context: string, c: UnetConfig): EncoderHalf {
  const levels = c.blockOutChannels.length;
  const norm: Norm = { groups: c.normGroups, eps: c.normEps };
  const cross = crossAttention(c, context);
  let width = c.blockOutChannels[0]!;
  const skips: EncoderHalf['skips'] = [{ value: x, width }];
  for (let level = 0; level < levels; level++) {
    const out = c.blockOutChannels[level]!;
    for (let j = 0; j < c.layersPerBlock; j++) {
      x = resnet(net, `down_blocks.${level}.resnets.${j}`, x, width, out, norm, temb);
      width = out;
      if (c.downBlockTypes[level] === 'CrossAttnDownBlock2D') x = transformer2d(net, `down_blocks.${level}.attentions.${j}`, x, width, cross(level));
      skips.push({ value: x, width });
    }
    if (level < levels - 1) {
      x = downsample(net, `down_blocks.${level}.downsamplers.0`, x, width, false);
      skips.push({ value: x, width });
    }
  }
  x = resnet(net, 'mid_block.resnets.0', x, width, width, norm, temb);
  x = transformer2d(net, 'mid_block.attentions.0', x, width, cross(levels - 1));
  x = resnet(net, 'mid_block.resnets.1', x, width, width, norm, temb);
  return { skips, x, width };
}

/**
 * diffusers' Timesteps: [n] values to [n, channels] sinusoids (flip_sin_to_cos, downscale_freq_shift).
 * The frequencies exp(-ln(10000) i / (half - shift)) are float32 exponents as torch computes them,
 * exponentiated correctly rounded (torch's vectorised exp differs in the last bit on a few
 * entries; the test tolerances cover it).
 */
function sinusoids(g: GraphBuilder, values: string, channels: number, c: Pick<UnetConfig, 'flipSinToCos' | 'freqShift'>, scope: string): string {
  const half = channels / 2;
  const lnMaxPeriod = Math.fround(-Math.log(10000));
  const freqs = Array.from({ length: half }, (_, i) => Math.fround(Math.exp(Math.fround(Math.fround(lnMaxPeriod * i) / (half - c.freqShift)))));
  const args = g.op('Mul', [g.op('Unsqueeze', [values, g.ints([1])], scope), g.floats(freqs, [1, half])], scope);
  const sin = g.op('Sin', [args], scope);
  const cos = g.op('Cos', [args], scope);
  return g.op('Concat', c.flipSinToCos ? [cos, sin] : [sin, cos], scope, { axis: -1 });
}

/** The activated time embedding [n, width] every resnet reads. */
export interface TimeEmbedding {
  value: string;
  width: number;
}

/**
 * Timesteps then TimestepEmbedding (linear_1, SiLU, linear_2), plus SDXL's add_embedding of the
 * pooled text and the embedded time ids, activated once more with SiLU as every resnet reads it.
 */
export function timeEmbedding(net: Net, timestep: string, c: UnetConfig): TimeEmbedding {
  const { g } = net;
  const channels = c.blockOutChannels[0]!;
  const projected = sinusoids(g, timestep, channels, c, '/time_proj');
  const hidden = linear(net, 'time_embedding.linear_1', projected, channels);
  const width = net.w.shape('time_embedding.linear_1.weight')[0]!;
  let emb = linear(net, 'time_embedding.linear_2', silu(g, hidden, '/time_embedding'), width, width);
  if (c.addition) emb = g.op('Add', [emb, addedEmbedding(net, c.addition, c, width)], '/time_embedding');
  return { value: silu(g, emb, '/time_embedding'), width };
}

/**
 * diffusers' text_time addition: each time id embedded as a timestep (add_time_proj, flattened and
 * regrouped per sample), after the pooled text, through add_embedding's two layers.
 */
function addedEmbedding(net: Net, a: NonNullable<UnetConfig['addition']>, c: UnetConfig, width: number): string {
  const { g } = net;
  const textEmbeds = g.input('text_embeds', ElemType.FLOAT, ['batch_size', a.textEmbeds]);
  const timeIds = g.input('time_ids', ElemType.FLOAT, ['batch_size', a.timeIds]);
  const scope = '/add_time_proj';
  const flat = g.op('Reshape', [timeIds, g.ints([-1])], scope);
  const perSample = g.op('Reshape', [sinusoids(g, flat, a.timeEmbedDim, c, scope), g.ints([-1, a.timeIds * a.timeEmbedDim])], scope);
  const joined = g.op('Concat', [textEmbeds, perSample], '/add_embedding', { axis: -1 });
  const hidden = linear(net, 'add_embedding.linear_1', joined, a.textEmbeds + a.timeIds * a.timeEmbedDim, width);
  return linear(net, 'add_embedding.linear_2', silu(g, hidden, '/add_embedding'), width, width);
}
