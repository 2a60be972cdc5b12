import { existsSync } from 'node:fs';
import { readInputFileSync } from '../input-file.js';
import { join } from 'node:path';
import { openWeightFile, type OpenedStore } from './checkpoint-store.js';
import { CheckpointError } from './errors.js';
import { sameNames } from './ldm-keys.js';
import type { DownBlock, Family, Prediction, TextEncoderConfig, UnetConfig, UpBlock, VaeConfig, Variant } from './model-config.js';
import type { ComponentSource, ModelSource } from './source.js';

/**
 * A diffusers (PyTorch) model folder: unet/, vae/, text_encoder/ with their config.json and
 * weights (.safetensors, or torch .bin read by the same pickle reader as .ckpt), tokenizer/ and
 * scheduler/. The configs give every hyper-parameter, the weights already carry the names the
 * builders use, and the scheduler config says ε or v. SDXL folders (a UNet with text_time added
 * conditioning) add text_encoder_2/ and tokenizer_2/; the refiner's has those alone.
 */

type Json = Record<string, unknown>;

export function readConfig(dir: string, file: string): Json {
  const path = join(dir, file);
  if (!existsSync(path)) throw new CheckpointError(`${path}: missing; a diffusers model folder needs it`);
  const bytes = readConfigBytes(path);
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
  } catch (err) {
    throw new CheckpointError(`${path}: not valid JSON; a diffusers model folder needs it`, { cause: err });
  }
  throw new CheckpointError(`${path} is not a JSON object`);
}

/** A diffusers config is kilobytes: a bigger one is not a config. */
const MAX_CONFIG_BYTES = 4 * 2 ** 20;

/**
 * A folder's config.json, bounded and from a regular file only: a config linked to /dev/zero or a
 * FIFO would otherwise be read (or hashed) forever.
 */
export function readConfigBytes(path: string): Buffer {
  return readInputFileSync(path, { label: 'model config', maxBytes: MAX_CONFIG_BYTES, exitCode: 2 });
}

export function num(config: Json, key: string, path: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new CheckpointError(`${path}: ${key} is ${JSON.stringify(v)}, expected a number`);
  return v;
}

/** A number the builder needs within bounds (an epsilon above 0, a whole width): past them the graph would not load or would paint NaN. */
export function boundedNum(config: Json, key: string, path: string, bounds: { min: number; max: number; whole?: boolean; aboveMin?: boolean }, fallback?: number): number {
  const v = num(config, key, path, fallback);
  const { min, max, whole = false, aboveMin = false } = bounds;
  if ((whole && !Number.isInteger(v)) || (aboveMin ? v <= min : v < min) || v > max) {
    throw new CheckpointError(`${path}: ${key} is ${v}, expected ${whole ? 'a whole number' : 'a number'} ${aboveMin ? `above ${min} and at most ${max}` : `from ${min} to ${max}`}`);
  }
  return v;
}

/** addition_time_embed_dim: a sinusoidal embedding's width (SDXL's 256). */
export const TIME_EMBED_DIM = { min: 2, max: 2 ** 16, whole: true } as const;

/** GroupNorm's epsilon: above 0 (a negative one takes the root of a negative variance), below 1. */
export const NORM_EPS = { min: 0, max: 1, aboveMin: true } as const;

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

const UNSUPPORTED_UNET_KEYS = ['class_embed_type', 'time_cond_proj_dim', 'encoder_hid_dim'];

function unetConfig(config: Json, path: string): UnetConfig {
  const unsupported = UNSUPPORTED_UNET_KEYS.find((k) => config[k] !== null && config[k] !== undefined);
  if (unsupported) throw new CheckpointError(`${path}: ${unsupported} is set (an LCM or other UNet); diffuse builds SD 1.x, 2.x and SDXL UNets`);
  const addition = config['addition_embed_type'];
  if (addition !== null && addition !== undefined && addition !== 'text_time') {
    throw new CheckpointError(`${path}: addition_embed_type ${JSON.stringify(addition)} is not SDXL's text_time; diffuse builds SD 1.x, 2.x and SDXL UNets`);
  }
  const blockOutChannels = nums(config, 'block_out_channels', path);
  const down = config['down_block_types'];
  const up = config['up_block_types'];
  const okDown = Array.isArray(down) && down.every((t) => t === 'CrossAttnDownBlock2D' || t === 'DownBlock2D') && down.length === blockOutChannels.length;
  const okUp = Array.isArray(up) && up.every((t) => t === 'CrossAttnUpBlock2D' || t === 'UpBlock2D') && up.length === blockOutChannels.length;
  if (!okDown || !okUp) throw new CheckpointError(`${path}: block types ${JSON.stringify(down)} / ${JSON.stringify(up)} are not SD's`);
  // diffusers' attention_head_dim holds the number of heads unless num_attention_heads is given.
  const heads = config['num_attention_heads'] ?? config['attention_head_dim'];
  const perLevel = typeof heads === 'number' ? blockOutChannels.map(() => heads) : Array.isArray(heads) ? (heads as number[]) : [];
  // SDXL gives a depth per level; the mid block takes the last, as diffusers builds it.
  const depth = config['transformer_layers_per_block'] ?? 1;
  const okDepth = typeof depth === 'number' || (Array.isArray(depth) && depth.length === blockOutChannels.length && depth.every((d) => typeof d === 'number'));
  if (perLevel.length !== blockOutChannels.length || !okDepth) throw new CheckpointError(`${path}: attention heads or transformer depth are not SD's`);
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
    transformerLayersPerBlock: depth as number | number[],
    normGroups: num(config, 'norm_num_groups', path, 32),
    normEps: boundedNum(config, 'norm_eps', path, NORM_EPS, 1e-5),
    flipSinToCos: config['flip_sin_to_cos'] !== false,
    freqShift: num(config, 'freq_shift', path, 0),
    sampleSize: num(config, 'sample_size', path, 64),
  };
}

/** `scaling`: the family's factor, for a config that leaves it out (0.18215 for SD, 0.13025 for SDXL). */
function vaeConfig(config: Json, path: string, scaling: number): VaeConfig {
  return {
    inChannels: num(config, 'in_channels', path, 3),
    outChannels: num(config, 'out_channels', path, 3),
    blockOutChannels: nums(config, 'block_out_channels', path),
    layersPerBlock: num(config, 'layers_per_block', path),
    latentChannels: num(config, 'latent_channels', path, 4),
    normGroups: num(config, 'norm_num_groups', path, 32),
    scalingFactor: num(config, 'scaling_factor', path, scaling),
    sampleSize: num(config, 'sample_size', path, 512),
  };
}

/** `sdxl`: the encoder emits every layer's states (and, for the second, text_embeds this wide: its projection_dim). */
function textConfig(config: Json, path: string, sdxl?: { projection: boolean }): TextEncoderConfig {
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
    ...(sdxl ? { sdxl: sdxl.projection ? { projection: num(config, 'projection_dim', path) } : {} } : {}),
  };
}

const VARIANTS: Readonly<Record<number, Variant>> = { 4: 'base', 9: 'inpaint', 5: 'depth' };

/**
 * SDXL's added conditioning from the UNet's config: the pooled text (bigG's projection) then
 * `timeIds` numbers of addition_time_embed_dim each: 6 for the base (sizes and crop), 5 for the
 * refiner (sizes, crop and aesthetic score).
 */
function additionOf(config: Json, path: string, pooled: number, timeIds: number): NonNullable<UnetConfig['addition']> {
  const timeEmbedDim = boundedNum(config, 'addition_time_embed_dim', path, TIME_EMBED_DIM);
  const input = num(config, 'projection_class_embeddings_input_dim', path);
  if (input !== pooled + timeIds * timeEmbedDim) {
    throw new CheckpointError(`${path}: projection_class_embeddings_input_dim ${input} is not text_encoder_2's ${pooled} pooled numbers and ${timeIds} time ids of ${timeEmbedDim}; the folder mixes models`);
  }
  return { textEmbeds: pooled, timeIds, timeEmbedDim };
}

export async function openDiffusersFolder(dir: string): Promise<ModelSource> {
  const lacking = ['model_index.json', 'unet/config.json'].filter((file) => !existsSync(join(dir, file)));
  if (lacking.length) throw new CheckpointError(`${dir} is not a whole diffusers model folder (no ${lacking.join(' nor ')}); pass a single-file checkpoint or a diffusers folder`);
  const index = readConfig(dir, 'model_index.json');
  const unetJson = readConfig(dir, 'unet/config.json');
  const unetPath = join(dir, 'unet/config.json');
  let unet = unetConfig(unetJson, unetPath);
  const sdxl = unetJson['addition_embed_type'] === 'text_time';
  const vae = vaeConfig(readConfig(dir, 'vae/config.json'), join(dir, 'vae/config.json'), sdxl ? 0.13025 : 0.18215);
  const hasFirst = existsSync(join(dir, 'text_encoder', 'config.json'));
  if (sdxl && !existsSync(join(dir, 'text_encoder_2', 'config.json'))) {
    throw new CheckpointError(`${dir}: an SDXL UNet but no text_encoder_2/config.json; an SDXL diffusers folder (base or refiner) has OpenCLIP bigG there`);
  }
  if (!sdxl && !hasFirst) throw new CheckpointError(`${join(dir, 'text_encoder/config.json')}: missing; a diffusers model folder needs it`);
  const textEncoder = hasFirst ? textConfig(readConfig(dir, 'text_encoder/config.json'), join(dir, 'text_encoder/config.json'), sdxl ? { projection: false } : undefined) : undefined;
  const textEncoder2 = sdxl ? textConfig(readConfig(dir, 'text_encoder_2/config.json'), join(dir, 'text_encoder_2/config.json'), { projection: true }) : undefined;
  if (textEncoder2) {
    // The base attends to both encoders' states side by side; the refiner to bigG's alone.
    const context = (textEncoder?.hidden ?? 0) + textEncoder2.hidden;
    if (unet.crossAttentionDim !== context) {
      throw new CheckpointError(`${unetPath}: cross_attention_dim ${unet.crossAttentionDim} is not the text encoders' ${context}; the folder mixes models`);
    }
    unet = { ...unet, addition: additionOf(unetJson, unetPath, textEncoder2.sdxl!.projection!, textEncoder ? 6 : 5) };
  }
  const variant = VARIANTS[unet.inChannels];
  if (!variant) throw new CheckpointError(`${dir}: the UNet takes ${unet.inChannels} input channels; SD's are 4, 9 (inpainting) or 5 (depth)`);
  if (sdxl && variant === 'depth') throw new CheckpointError(`${dir}: a 5-channel (depth) SDXL UNet; SDXL folders convert as base, refiner or inpainting models`);
  const family: Family = sdxl ? 'sdxl' : textEncoder!.activation === 'gelu' ? 'sd2' : 'sd1';
  const scheduler = readConfig(dir, 'scheduler/scheduler_config.json');
  const prediction: Prediction = scheduler['prediction_type'] === 'v_prediction' ? 'v_prediction' : 'epsilon';
  const parts = {
    ...(textEncoder ? { textEncoder: weightFile(dir, 'text_encoder', 'model', 'pytorch_model') } : {}),
    ...(textEncoder2 ? { textEncoder2: weightFile(dir, 'text_encoder_2', 'model', 'pytorch_model') } : {}),
    unet: weightFile(dir, 'unet', 'diffusion_pytorch_model', 'diffusion_pytorch_model'),
    vae: weightFile(dir, 'vae', 'diffusion_pytorch_model', 'diffusion_pytorch_model'),
  };
  const stores: Partial<Record<keyof typeof parts, OpenedStore>> = {};
  try {
    for (const [part, file] of Object.entries(parts) as Array<[keyof typeof parts, string]>) stores[part] = await openWeightFile(file);
  } catch (err) {
    await Promise.all(Object.values(stores).map((s) => s.close()));
    throw err;
  }
  const component = (store: OpenedStore | undefined): ComponentSource | undefined => store && { store, locate: sameNames };
  const tokenizerDir = textEncoder && existsSync(join(dir, 'tokenizer', 'vocab.json')) ? join(dir, 'tokenizer') : undefined;
  const tokenizer2Dir = textEncoder2 && existsSync(join(dir, 'tokenizer_2', 'vocab.json')) ? join(dir, 'tokenizer_2') : undefined;
  const forceZeros = index['force_zeros_for_empty_prompt'];
  return {
    config: { family, variant, ...(textEncoder ? { textEncoder } : {}), ...(textEncoder2 ? { textEncoder2 } : {}), unet, vae },
    ...(stores.textEncoder ? { textEncoder: component(stores.textEncoder)! } : {}),
    ...(stores.textEncoder2 ? { textEncoder2: component(stores.textEncoder2)! } : {}),
    unet: component(stores.unet)!,
    vae: component(stores.vae)!,
    prediction,
    statesSize: true,
    ...(tokenizerDir ? { tokenizerDir } : {}),
    ...(tokenizer2Dir ? { tokenizer2Dir } : {}),
    ...(typeof forceZeros === 'boolean' ? { forceZerosForEmptyPrompt: forceZeros } : {}),
    close: async () => {
      await Promise.all(Object.values(stores).map((s) => s.close()));
    },
  };
}
