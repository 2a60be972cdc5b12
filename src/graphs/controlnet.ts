import { ElemType } from '../onnx/proto.js';
import { conv2d, silu, type Net } from './layers.js';
import type { UnetConfig } from './model-config.js';
import { GraphBuilder, type WeightType } from './onnx-builder.js';
import { downAndMidBlocks, timeEmbedding } from './unet.js';
import type { ComponentWeights } from './weights.js';

/** diffusers' ControlNetModel for SD 1.x/2.x: a UNet's down and mid blocks, plus what reads the control image. */
export interface ControlNetConfig {
  /** The copied UNet half (its up-block fields are unused). */
  unet: UnetConfig;
  /** Channels of the control image (3: RGB). */
  conditioningChannels: number;
  /** ControlNetConditioningEmbedding's widths: one stride-2 stage between each two (SD: 16, 32, 96, 256 for the VAE's 8x). */
  conditioningEmbedding: number[];
}

/**
 * The ControlNet graph src/pipeline/controlnet.ts loads, with the names the ONNX community's
 * exports (and tools/make_controlnet_fixture.py) give it: sample, timestep [steps],
 * encoder_hidden_states, controlnet_cond (RGB in [0, 1] at pixel size) and conditioning_scale (a
 * scalar) in; down_block_res_sample_0..N-1 and mid_block_res_sample out, each multiplied by the
 * scale, as ControlNetModel.forward returns them without guess mode.
 */
export function buildControlNet(w: ComponentWeights, config: ControlNetConfig, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('controlnet', weightType);
  const net: Net = { g, w };
  const c = config.unet;
  const sample = g.input('sample', ElemType.FLOAT, ['batch_size', c.inChannels, 'height', 'width']);
  const timestep = g.input('timestep', ElemType.FLOAT, ['steps']);
  const context = g.input('encoder_hidden_states', ElemType.FLOAT, ['batch_size', 'sequence_length', c.crossAttentionDim]);
  const cond = g.input('controlnet_cond', ElemType.FLOAT, ['batch_size', config.conditioningChannels, 'image_height', 'image_width']);
  const scale = g.input('conditioning_scale', ElemType.FLOAT, []);
  const temb = timeEmbedding(net, timestep, c);

  const first = c.blockOutChannels[0]!;
  const hint = conditioningEmbedding(net, cond, config, first);
  const x = g.op('Add', [conv2d(net, 'conv_in', sample, c.inChannels, first), hint], '/');
  const half = downAndMidBlocks(net, x, temb, context, c);

  half.skips.forEach((skip, i) => {
    const out = conv2d(net, `controlnet_down_blocks.${i}`, skip.value, skip.width, skip.width);
    g.output(g.op('Mul', [out, scale], `/controlnet_down_blocks.${i}`), `down_block_res_sample_${i}`, ElemType.FLOAT, ['batch_size', skip.width, `down_${i}_height`, `down_${i}_width`]);
  });
  const mid = conv2d(net, 'controlnet_mid_block', half.x, half.width, half.width);
  g.output(g.op('Mul', [mid, scale], '/controlnet_mid_block'), 'mid_block_res_sample', ElemType.FLOAT, ['batch_size', half.width, 'mid_height', 'mid_width']);
  return g;
}

/**
 * ControlNetConditioningEmbedding: conv_in and SiLU, then per stage a 3x3 convolution and a stride-2
 * one, each followed by SiLU, then conv_out (no activation) to the UNet's first width.
 */
function conditioningEmbedding(net: Net, cond: string, config: ControlNetConfig, outChannels: number): string {
  const p = 'controlnet_cond_embedding';
  const widths = config.conditioningEmbedding;
  let h = silu(net.g, conv2d(net, `${p}.conv_in`, cond, config.conditioningChannels, widths[0]), `/${p}/conv_in`);
  for (let i = 0; i + 1 < widths.length; i++) {
    h = silu(net.g, conv2d(net, `${p}.blocks.${2 * i}`, h, widths[i], widths[i]), `/${p}/blocks.${2 * i}`);
    h = silu(net.g, conv2d(net, `${p}.blocks.${2 * i + 1}`, h, widths[i], widths[i + 1], { stride: 2, pads: [1, 1, 1, 1] }), `/${p}/blocks.${2 * i + 1}`);
  }
  return conv2d(net, `${p}.conv_out`, h, widths[widths.length - 1], outChannels);
}
