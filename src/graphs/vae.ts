import { ElemType } from '../onnx/proto.js';
import { downsample, resnet, spatialSelfAttention, upsample, type Norm } from './blocks.js';
import { conv2d, groupNorm, silu, type Net } from './layers.js';
import type { VaeConfig } from './model-config.js';
import { GraphBuilder, type WeightType } from './onnx-builder.js';
import type { ComponentWeights } from './weights.js';

/**
 * diffusers' AutoencoderKL as optimum splits it: vae_encoder (sample [batch, 3, H, W] ->
 * latent_parameters, the quant_conv output: mean and log-variance over 2C channels) and
 * vae_decoder (latent_sample [batch, C, h, w] -> sample, post_quant_conv first). Every norm
 * is GroupNorm(32) with eps 1e-6.
 */

const EPS = 1e-6;

function midBlock(net: Net, path: string, x: string, width: number, norm: Norm): string {
  x = resnet(net, `${path}.mid_block.resnets.0`, x, width, width, norm);
  x = spatialSelfAttention(net, `${path}.mid_block.attentions.0`, x, width, norm);
  return resnet(net, `${path}.mid_block.resnets.1`, x, width, width, norm);
}

function normOut(net: Net, path: string, x: string, width: number, norm: Norm): string {
  return silu(net.g, groupNorm(net, `${path}.conv_norm_out`, x, width, norm.groups, norm.eps), `/${path}/conv_norm_out`);
}

export function buildVaeEncoder(w: ComponentWeights, config: VaeConfig, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('vae_encoder', weightType);
  const net: Net = { g, w };
  const norm: Norm = { groups: config.normGroups, eps: EPS };
  const channels = config.blockOutChannels;
  const image = g.input('sample', ElemType.FLOAT, ['batch_size', config.inChannels, 'height', 'width']);
  let x = conv2d(net, 'encoder.conv_in', image, config.inChannels, channels[0]);
  let width = channels[0]!;
  channels.forEach((out, level) => {
    for (let j = 0; j < config.layersPerBlock; j++) {
      x = resnet(net, `encoder.down_blocks.${level}.resnets.${j}`, x, width, out, norm);
      width = out;
    }
    if (level < channels.length - 1) x = downsample(net, `encoder.down_blocks.${level}.downsamplers.0`, x, width, true);
  });
  x = midBlock(net, 'encoder', x, width, norm);
  const moments = conv2d(net, 'encoder.conv_out', normOut(net, 'encoder', x, width, norm), width, 2 * config.latentChannels);
  const parameters = conv2d(net, 'quant_conv', moments, 2 * config.latentChannels, 2 * config.latentChannels);
  g.output(parameters, 'latent_parameters', ElemType.FLOAT, ['batch_size', 2 * config.latentChannels, 'height_latent', 'width_latent']);
  return g;
}

export function buildVaeDecoder(w: ComponentWeights, config: VaeConfig, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('vae_decoder', weightType);
  const net: Net = { g, w };
  const norm: Norm = { groups: config.normGroups, eps: EPS };
  const channels = [...config.blockOutChannels].reverse();
  const latents = g.input('latent_sample', ElemType.FLOAT, ['batch_size', config.latentChannels, 'height_latent', 'width_latent']);
  const z = conv2d(net, 'post_quant_conv', latents, config.latentChannels, config.latentChannels);
  let x = conv2d(net, 'decoder.conv_in', z, config.latentChannels, channels[0]);
  let width = channels[0]!;
  x = midBlock(net, 'decoder', x, width, norm);
  channels.forEach((out, i) => {
    for (let j = 0; j <= config.layersPerBlock; j++) {
      x = resnet(net, `decoder.up_blocks.${i}.resnets.${j}`, x, width, out, norm);
      width = out;
    }
    if (i < channels.length - 1) x = upsample(net, `decoder.up_blocks.${i}.upsamplers.0`, x, width);
  });
  const image = conv2d(net, 'decoder.conv_out', normOut(net, 'decoder', x, width, norm), width, config.outChannels);
  g.output(image, 'sample', ElemType.FLOAT, ['batch_size', config.outChannels, 'height', 'width']);
  return g;
}
