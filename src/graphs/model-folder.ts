import { readFileSync } from 'node:fs';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeClipTokenizer } from './clip-tokenizer-files.js';
import type { ModelConfig, TextEncoderConfig } from './model-config.js';
import type { ModelSource } from './source.js';
import type { WeightRecord } from './weights.js';

/**
 * Everything of the diffusers ONNX layout besides the graphs: model_index.json, each component's
 * config.json (what optimum writes beside model.onnx, in diffusers' and transformers' keys, which
 * src/pipeline/model-files.ts reads), the scheduler config, the tokenizer, and two records of
 * the conversion: checkpoint.json (where the model came from, A1111's hashes) and
 * weight-map.json (which checkpoint tensor each initialiser holds).
 */

/** What checkpoint.json records; the pipeline's metadata reads `name`, `a1111Hash`, `a1111OldHash`. */
export interface CheckpointRecord {
  /** The checkpoint's file name without extension: A1111's "Model". */
  name: string;
  file: string;
  sha256?: string;
  /** First 10 hex digits of the file's SHA-256: A1111's "Model hash". */
  a1111Hash?: string;
  /** A1111's old hash: SHA-256 of 64 KiB at offset 1 MiB, 8 hex digits. */
  a1111OldHash?: string;
  /**
   * A converted diffusers folder's stand-in for the Model hash (it has no checkpoint file): the
   * SHA-256 of unet/model.onnx and its data file, as weightsHash reads them, taken while writing.
   * Absent from a checkpoint's record (a1111Hash is its Model hash) and from older diffuse's.
   */
  unetSha256?: string;
  family: ModelConfig['family'];
  variant: ModelConfig['variant'];
  prediction: ModelConfig['prediction'];
  /** How the prediction type was decided. */
  predictionFrom: 'family' | 'option' | 'probe' | 'config';
  precision: 'fp32' | 'fp16';
  converter: number;
}

export const CHECKPOINT_RECORD = 'checkpoint.json';
export const WEIGHT_MAP = 'weight-map.json';
/** Bumped when a change to the builders changes the graphs a checkpoint converts to. */
export const CONVERTER_VERSION = 1;

const PIPELINES: Readonly<Record<ModelConfig['variant'], string>> = {
  base: 'StableDiffusionPipeline',
  inpaint: 'StableDiffusionInpaintPipeline',
  depth: 'StableDiffusionDepth2ImgPipeline',
};

const SDXL_PIPELINES: Readonly<Partial<Record<ModelConfig['variant'], string>>> = {
  base: 'StableDiffusionXLPipeline',
  inpaint: 'StableDiffusionXLInpaintPipeline',
};

/**
 * The training schedule with the model's prediction type: stable-diffusion-v1-5's scheduler_config.json
 * for SD 1.x/2.x, stable-diffusion-xl-base-1.0's (Euler, the same betas and spacing) for SDXL.
 */
function schedulerConfig(config: ModelConfig): Record<string, unknown> {
  if (config.family === 'sdxl') {
    return {
      _class_name: 'EulerDiscreteScheduler',
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      clip_sample: false,
      interpolation_type: 'linear',
      num_train_timesteps: 1000,
      prediction_type: config.prediction,
      sample_max_value: 1.0,
      set_alpha_to_one: false,
      skip_prk_steps: true,
      steps_offset: 1,
      timestep_spacing: 'leading',
      trained_betas: null,
      use_karras_sigmas: false,
    };
  }
  return {
    _class_name: 'PNDMScheduler',
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    clip_sample: false,
    num_train_timesteps: 1000,
    prediction_type: config.prediction,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    timestep_spacing: 'leading',
    trained_betas: null,
  };
}

function unetJson(config: ModelConfig): Record<string, unknown> {
  const u = config.unet;
  return {
    _class_name: 'UNet2DConditionModel',
    act_fn: 'silu',
    // diffusers' (misnamed) attention_head_dim holds the number of heads.
    attention_head_dim: u.heads.every((h) => h === u.heads[0]) ? u.heads[0] : u.heads,
    block_out_channels: u.blockOutChannels,
    cross_attention_dim: u.crossAttentionDim,
    down_block_types: u.downBlockTypes,
    flip_sin_to_cos: u.flipSinToCos,
    freq_shift: u.freqShift,
    in_channels: u.inChannels,
    layers_per_block: u.layersPerBlock,
    norm_eps: u.normEps,
    norm_num_groups: u.normGroups,
    out_channels: u.outChannels,
    sample_size: u.sampleSize,
    transformer_layers_per_block: u.transformerLayersPerBlock,
    up_block_types: u.upBlockTypes,
    use_linear_projection: u.useLinearProjection,
    ...(u.addition
      ? { addition_embed_type: 'text_time', addition_time_embed_dim: u.addition.timeEmbedDim, projection_class_embeddings_input_dim: u.addition.textEmbeds + u.addition.timeIds * u.addition.timeEmbedDim }
      : {}),
  };
}

function vaeJson(config: ModelConfig): Record<string, unknown> {
  const v = config.vae;
  return {
    _class_name: 'AutoencoderKL',
    act_fn: 'silu',
    block_out_channels: v.blockOutChannels,
    down_block_types: v.blockOutChannels.map(() => 'DownEncoderBlock2D'),
    in_channels: v.inChannels,
    latent_channels: v.latentChannels,
    layers_per_block: v.layersPerBlock,
    norm_num_groups: v.normGroups,
    out_channels: v.outChannels,
    sample_size: v.sampleSize,
    scaling_factor: v.scalingFactor,
    up_block_types: v.blockOutChannels.map(() => 'UpDecoderBlock2D'),
  };
}

function textEncoderJson(t: TextEncoderConfig): Record<string, unknown> {
  const projection = t.sdxl?.projection;
  return {
    architectures: [projection === undefined ? 'CLIPTextModel' : 'CLIPTextModelWithProjection'],
    ...(projection === undefined ? {} : { projection_dim: projection }),
    model_type: 'clip_text_model',
    // SD's configs: with eos_token_id 2, transformers pools at the highest id (end of text).
    bos_token_id: 0,
    eos_token_id: 2,
    pad_token_id: 1,
    hidden_act: t.activation,
    hidden_size: t.hidden,
    intermediate_size: t.intermediate,
    layer_norm_eps: t.layerNormEps,
    max_position_embeddings: t.positions,
    num_attention_heads: t.heads,
    num_hidden_layers: t.layers,
    vocab_size: t.vocabSize,
  };
}

/** checkpoint.json of a converted folder, or undefined for any other folder (what the metadata needs: name and hashes). */
export function readCheckpointRecord(dir: string): CheckpointRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(join(dir, CHECKPOINT_RECORD), 'utf8')) as CheckpointRecord;
    return typeof record.name === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** What a source carries over beyond the graphs: a diffusers folder's tokenizers and its model_index.json's empty-prompt choice. */
export type FolderExtras = Pick<ModelSource, 'tokenizerDir' | 'tokenizer2Dir' | 'forceZerosForEmptyPrompt'>;

/**
 * The SDXL refiner (bigG alone, aesthetic-score time ids) is diffusers' img2img pipeline, whose
 * model_index.json says so, and which leaves empty prompts to the encoder (stabilityai's refiner).
 */
function sdxlIndex(config: ModelConfig, extras: FolderExtras): Record<string, unknown> {
  const refiner = !config.textEncoder;
  return {
    _class_name: refiner ? 'StableDiffusionXLImg2ImgPipeline' : SDXL_PIPELINES[config.variant],
    text_encoder_2: ['diffusers', 'OnnxRuntimeModel'],
    tokenizer_2: ['transformers', 'CLIPTokenizer'],
    force_zeros_for_empty_prompt: extras.forceZerosForEmptyPrompt ?? !refiner,
    ...(refiner ? { requires_aesthetics_score: true, text_encoder: [null, null], tokenizer: [null, null] } : {}),
  };
}

export async function writeModelFolder(dir: string, config: ModelConfig, record: CheckpointRecord, weights: Record<string, WeightRecord[]>, extras: FolderExtras = {}): Promise<void> {
  const sdxl = config.textEncoder2;
  await writeJson(join(dir, 'model_index.json'), {
    _class_name: PIPELINES[config.variant],
    requires_safety_checker: false,
    scheduler: ['diffusers', sdxl ? 'EulerDiscreteScheduler' : 'PNDMScheduler'],
    text_encoder: ['diffusers', 'OnnxRuntimeModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'OnnxRuntimeModel'],
    vae_decoder: ['diffusers', 'OnnxRuntimeModel'],
    vae_encoder: ['diffusers', 'OnnxRuntimeModel'],
    ...(sdxl ? sdxlIndex(config, extras) : {}),
  });
  await mkdir(join(dir, 'scheduler'), { recursive: true });
  await writeJson(join(dir, 'scheduler', 'scheduler_config.json'), schedulerConfig(config));
  await writeJson(join(dir, 'unet', 'config.json'), unetJson(config));
  await writeJson(join(dir, 'vae_encoder', 'config.json'), vaeJson(config));
  await writeJson(join(dir, 'vae_decoder', 'config.json'), vaeJson(config));
  if (config.textEncoder) {
    await writeJson(join(dir, 'text_encoder', 'config.json'), textEncoderJson(config.textEncoder));
    if (extras.tokenizerDir) await cp(extras.tokenizerDir, join(dir, 'tokenizer'), { recursive: true });
    else await writeClipTokenizer(join(dir, 'tokenizer'), config.family === 'sd2' ? '!' : 'eos');
  }
  if (sdxl) {
    await writeJson(join(dir, 'text_encoder_2', 'config.json'), textEncoderJson(sdxl));
    // SDXL's second tokenizer pads with "!" as OpenCLIP's (stabilityai's tokenizer_2 config).
    if (extras.tokenizer2Dir) await cp(extras.tokenizer2Dir, join(dir, 'tokenizer_2'), { recursive: true });
    else await writeClipTokenizer(join(dir, 'tokenizer_2'), '!');
  }
  await writeJson(join(dir, WEIGHT_MAP), weights);
  await writeJson(join(dir, CHECKPOINT_RECORD), record);
}
