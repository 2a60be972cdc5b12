import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../errors.js';
import { readInputFileSync } from '../input-file.js';
import { TEXT_ENCODER_KEYS, UNET_KEYS, VAE_KEYS, checkConfigKeys, checkSchedulerConfig } from './model-config-check.js';

/**
 * What a diffusers ONNX folder says about itself: model_index.json, each component's
 * config.json (optimum writes them beside model.onnx) and scheduler/scheduler_config.json.
 * Hub exports differ in which configs they carry, so the numbers Stable Diffusion uses
 * stand in for any that are absent.
 */
export interface ModelFiles {
  dir: string;
  modelIndex: Record<string, unknown>;
  schedulerConfig: Record<string, unknown>;
  /** Pixels per latent along each side: 2^(VAE levels - 1), 8 for Stable Diffusion. */
  vaeScaleFactor: number;
  /** Latents are multiplied by this after encoding (0.18215 for SD 1.x/2.x). */
  vaeScalingFactor: number;
  latentChannels: number;
  /** The UNet's native latent size (64 for SD 1.5 at 512 px). */
  sampleSize: number;
  /** The VAE's sample_size in pixels: the tile side of --vae-tiling (512 for SD 1.5). */
  vaeSampleSize: number;
  /** The UNet's resnets per down block (2 for SD), which places ControlNet residuals at their resolutions. */
  layersPerBlock: number;
}

export type Component =
  | 'text_encoder'
  | 'text_encoder_2'
  | 'unet'
  | 'vae_decoder'
  | 'vae_encoder'
  | 'tokenizer'
  | 'tokenizer_2'
  | 'scheduler'
  | 'depth_estimator'
  | 'feature_extractor'
  | 'safety_checker'
  | 'controlnet';

export function componentPath(dir: string, component: Component, file = 'model.onnx'): string {
  return join(dir, component, file);
}

/** Whether the folder ships a depth estimator (depth models such as stabilityai/stable-diffusion-2-depth). */
export function hasDepthEstimator(dir: string): boolean {
  return hasPart(dir, 'depth_estimator');
}

/** Whether the folder has this component's graph (SDXL: text_encoder_2/; a refiner lacks text_encoder/). */
export function hasPart(dir: string, component: Component): boolean {
  return existsSync(componentPath(dir, component));
}

export function requirePart(dir: string, component: Component, file = 'model.onnx'): string {
  const path = componentPath(dir, component, file);
  if (!existsSync(path)) {
    throw new ModelLoadError(
      `model folder ${dir} has no ${component}/${file}; a diffusers ONNX model needs it (re-download the model or point --model at a complete folder)`,
    );
  }
  return path;
}

/** A model's JSON configs are kilobytes: a bigger one is not a config. */
const MAX_CONFIG_BYTES = 4 * 2 ** 20;

/** A config file of a model folder: bounded, regular files only, a JSON object (exit 1: the model is broken). */
export function readModelJson(path: string): Record<string, unknown> {
  const bytes = readInputFileSync(path, { label: 'model config', maxBytes: MAX_CONFIG_BYTES, exitCode: 1 });
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ModelLoadError(`${path} is not valid JSON (${(err as Error).message}); fix the file or re-download the model`, { cause: err });
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  throw new ModelLoadError(`${path} is not a JSON object; fix the file or re-download the model`);
}

const readJson = readModelJson;

function readOptionalJson(path: string, keys: Parameters<typeof checkConfigKeys>[2]): Record<string, unknown> {
  if (!existsSync(path)) return {};
  const config = readJson(path);
  checkConfigKeys(path, config, keys);
  return config;
}

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

export function readModelFiles(dir: string): ModelFiles {
  if (!existsSync(dir)) {
    throw new ModelLoadError(`model folder not found: ${dir} (pass --model a diffusers ONNX folder or a registry id)`);
  }
  if (!statSync(dir).isDirectory()) throw new ModelLoadError(`${dir} is not a model folder (pass --model a diffusers ONNX folder or a registry id)`);
  const indexPath = join(dir, 'model_index.json');
  if (!existsSync(indexPath)) {
    throw new ModelLoadError(`${dir} has no model_index.json: not a diffusers ONNX model folder`);
  }
  const modelIndex = readJson(indexPath);
  const schedulerPath = requirePart(dir, 'scheduler', 'scheduler_config.json');
  const schedulerConfig = readJson(schedulerPath);
  checkSchedulerConfig(schedulerPath, schedulerConfig);
  const vae = { ...readOptionalJson(componentPath(dir, 'vae_encoder', 'config.json'), VAE_KEYS), ...readOptionalJson(componentPath(dir, 'vae_decoder', 'config.json'), VAE_KEYS) };
  const unet = readOptionalJson(componentPath(dir, 'unet', 'config.json'), UNET_KEYS);
  readOptionalJson(componentPath(dir, 'text_encoder', 'config.json'), TEXT_ENCODER_KEYS);
  const blocks = Array.isArray(vae.block_out_channels) ? vae.block_out_channels.length : 4;
  const native = 2 ** (blocks - 1) * num(unet.sample_size, 64);
  if (native > 8192) {
    throw new ModelLoadError(`${dir}: unet sample_size ${num(unet.sample_size, 64)} at the VAE's ${2 ** (blocks - 1)}x makes ${native} px images; at most 8192 are made (fix the configs or re-download the model)`);
  }
  return {
    dir,
    modelIndex,
    schedulerConfig,
    vaeScaleFactor: 2 ** (blocks - 1),
    vaeScalingFactor: num(vae.scaling_factor, 0.18215),
    latentChannels: num(vae.latent_channels, num(unet.out_channels, 4)),
    sampleSize: num(unet.sample_size, 64),
    vaeSampleSize: num(vae.sample_size, 2 ** (blocks - 1) * num(unet.sample_size, 64)),
    layersPerBlock: num(unet.layers_per_block, 2),
  };
}
