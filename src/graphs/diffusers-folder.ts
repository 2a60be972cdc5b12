import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openWeightFile, type OpenedStore } from './checkpoint-store.js';
import { CheckpointError } from './errors.js';
import { sameNames } from './ldm-keys.js';
import type { DownBlock, Family, Prediction, TextEncoderConfig, UnetConfig, UpBlock, VaeConfig, Variant } from './model-config.js';
import type { ModelSource } from './source.js';

/**
 * A diffusers (PyTorch) model folder: unet/, vae/, text_encoder/ with their config.json and
 * weights (.safetensors, or torch .bin read by the same pickle reader as .ckpt), tokenizer/ and
 * scheduler/. The configs give every hyper-parameter, the weights already carry the names the
 * builders use, and the scheduler config says ε or v.
 */

type Json = Record<string, unknown>;

function readConfig(dir: string, file: string): Json {
  const path = join(dir, file);
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
  } catch (err) {
    throw new CheckpointError(`${path}: ${existsSync(path) ? 'not valid JSON' : 'missing'}; a diffusers model folder needs it`, { cause: err });
  }
  throw new CheckpointError(`${path} is not a JSON object`);
}

function num(config: Json, key: string, path: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(`${path}: ${key} is ${JSON.stringify(v)}, expected a number`);
  return v;
}

function nums(config: Json, key: string, path: string): number[] {
  const v = config[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new CheckpointError(`${path}: ${key} is not a list of numbers`);
  return v as number[];
}

/** Weight files in the order diffusers picks them: safetensors first, the fp16 variant when that is all there is. */
function weightFile(dir: string, component: string, safetensors: string, bin: string): string {
  for (const name of [`${safetensors}.safetensors`, `${safetensors}.fp16.safetensors`, `${bin}.bin`, `${bin}.fp16.bin`]) {
    const path = join(dir, component, name);
    if (existsSync(path)) return path;
  }
  throw new CheckpointError(`${join(dir, component)} has no ${safetensors}.safetensors (or ${bin}.bin); the diffusers folder is incomplete`);
}

const UNSUPPORTED_UNET_KEYS = ['addition_embed_type', 'class_embed_type', 'time_cond_proj_dim', 'encoder_hid_dim'];

function unetConfig(config: Json, path: string): UnetConfig {
  const unsupported = UNSUPPORTED_UNET_KEYS.find((k) => config[k] !== null && config[k] !== undefined);
  if (unsupported) throw new CheckpointError(`${path}: ${unsupported} is set (an SDXL, LCM or other UNet); diffuse builds SD 1.x and 2.x UNets so far`);
  const blockOutChannels = nums(config, 'block_out_channels', path);
  const down = config['down_block_types'];
  const up = config['up_block_types'];
  const okDown = Array.isArray(down) && down.every((t) => t === 'CrossAttnDownBlock2D' || t === 'DownBlock2D') && down.length === blockOutChannels.length;
  const okUp = Array.isArray(up) && up.every((t) => t === 'CrossAttnUpBlock2D' || t === 'UpBlock2D') && up.length === blockOutChannels.length;
  if (!okDown || !okUp) throw new CheckpointError(`${path}: block types ${JSON.stringify(down)} / ${JSON.stringify(up)} are not SD 1.x/2.x's`);
  // diffusers' attention_head_dim holds the number of heads unless num_attention_heads is given.
  const heads = config['num_attention_heads'] ?? config['attention_head_dim'];
  const perLevel = typeof heads === 'number' ? blockOutChannels.map(() => heads) : Array.isArray(heads) ? (heads as number[]) : [];
  const depth = config['transformer_layers_per_block'] ?? 1;
  if (perLevel.length !== blockOutChannels.length || typeof depth !== 'number') throw new CheckpointError(`${path}: attention heads or transformer depth are not SD 1.x/2.x's`);
  return {
    inChannels: num(config, 'in_channels', path),
    outChannels: num(config, 'out_channels', path),
    blockOutChannels,
    layersPerBlock: num(config, 'layers_per_block', path),
    downBlockTypes: down as DownBlock[],
    upBlockTypes: up as UpBlock[],
    crossAttentionDim: num(config, 'cross_attention_dim', path),
    heads: perLevel,
    useLinearProjection: config['use_linear_projection'] === true,
    transformerLayersPerBlock: depth,
    normGroups: num(config, 'norm_num_groups', path, 32),
    normEps: num(config, 'norm_eps', path, 1e-5),
    flipSinToCos: config['flip_sin_to_cos'] !== false,
    freqShift: num(config, 'freq_shift', path, 0),
    sampleSize: num(config, 'sample_size', path, 64),
  };
}

function vaeConfig(config: Json, path: string): VaeConfig {
  return {
    inChannels: num(config, 'in_channels', path, 3),
    outChannels: num(config, 'out_channels', path, 3),
    blockOutChannels: nums(config, 'block_out_channels', path),
    layersPerBlock: num(config, 'layers_per_block', path),
    latentChannels: num(config, 'latent_channels', path, 4),
    normGroups: num(config, 'norm_num_groups', path, 32),
    scalingFactor: num(config, 'scaling_factor', path, 0.18215),
    sampleSize: num(config, 'sample_size', path, 512),
  };
}

function textConfig(config: Json, path: string): TextEncoderConfig {
  const activation = config['hidden_act'] ?? 'quick_gelu';
  if (activation !== 'quick_gelu' && activation !== 'gelu') throw new CheckpointError(`${path}: hidden_act ${JSON.stringify(activation)} is not CLIP's`);
  return {
    vocabSize: num(config, 'vocab_size', path),
    hidden: num(config, 'hidden_size', path),
    layers: num(config, 'num_hidden_layers', path),
    heads: num(config, 'num_attention_heads', path),
    intermediate: num(config, 'intermediate_size', path),
    positions: num(config, 'max_position_embeddings', path, 77),
    activation,
    layerNormEps: num(config, 'layer_norm_eps', path, 1e-5),
  };
}

const VARIANTS: Readonly<Record<number, Variant>> = { 4: 'base', 9: 'inpaint', 5: 'depth' };

export async function openDiffusersFolder(dir: string): Promise<ModelSource> {
  if (!existsSync(join(dir, 'model_index.json')) || !existsSync(join(dir, 'unet', 'config.json'))) {
    throw new CheckpointError(`${dir} is not a diffusers model folder (no model_index.json and unet/config.json); pass a single-file checkpoint or a diffusers folder`);
  }
  const unet = unetConfig(readConfig(dir, 'unet/config.json'), join(dir, 'unet/config.json'));
  const vae = vaeConfig(readConfig(dir, 'vae/config.json'), join(dir, 'vae/config.json'));
  const textEncoder = textConfig(readConfig(dir, 'text_encoder/config.json'), join(dir, 'text_encoder/config.json'));
  const variant = VARIANTS[unet.inChannels];
  if (!variant) throw new CheckpointError(`${dir}: the UNet takes ${unet.inChannels} input channels; SD's are 4, 9 (inpainting) or 5 (depth)`);
  const family: Family = textEncoder.activation === 'gelu' ? 'sd2' : 'sd1';
  const scheduler = readConfig(dir, 'scheduler/scheduler_config.json');
  const prediction: Prediction = scheduler['prediction_type'] === 'v_prediction' ? 'v_prediction' : 'epsilon';
  const files = [
    weightFile(dir, 'text_encoder', 'model', 'pytorch_model'),
    weightFile(dir, 'unet', 'diffusion_pytorch_model', 'diffusion_pytorch_model'),
    weightFile(dir, 'vae', 'diffusion_pytorch_model', 'diffusion_pytorch_model'),
  ];
  const stores: OpenedStore[] = [];
  try {
    for (const file of files) stores.push(await openWeightFile(file));
  } catch (err) {
    await Promise.all(stores.map((s) => s.close()));
    throw err;
  }
  const [textStore, unetStore, vaeStore] = stores as [OpenedStore, OpenedStore, OpenedStore];
  return {
    config: { family, variant, textEncoder, unet, vae },
    textEncoder: { store: textStore, locate: sameNames },
    unet: { store: unetStore, locate: sameNames },
    vae: { store: vaeStore, locate: sameNames },
    prediction,
    statesSize: true,
    ...(existsSync(join(dir, 'tokenizer', 'vocab.json')) ? { tokenizerDir: join(dir, 'tokenizer') } : {}),
    close: async () => {
      await Promise.all(stores.map((s) => s.close()));
    },
  };
}
