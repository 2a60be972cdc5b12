import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../errors.js';

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
  | 'feature_extractor';

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

function readJson(path: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (err) {
    throw new ModelLoadError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  throw new ModelLoadError(`${path} is not a JSON object`);
}

function readOptionalJson(path: string): Record<string, unknown> {
  return existsSync(path) ? readJson(path) : {};
}

function num(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

export function readModelFiles(dir: string): ModelFiles {
  if (!existsSync(dir)) {
    throw new ModelLoadError(`model folder not found: ${dir} (pass --model a diffusers ONNX folder or a registry id)`);
  }
  const indexPath = join(dir, 'model_index.json');
  if (!existsSync(indexPath)) {
    throw new ModelLoadError(`${dir} has no model_index.json: not a diffusers ONNX model folder`);
  }
  const modelIndex = readJson(indexPath);
  const schedulerConfig = readJson(requirePart(dir, 'scheduler', 'scheduler_config.json'));
  const vae = { ...readOptionalJson(componentPath(dir, 'vae_encoder', 'config.json')), ...readOptionalJson(componentPath(dir, 'vae_decoder', 'config.json')) };
  const unet = readOptionalJson(componentPath(dir, 'unet', 'config.json'));
  const blocks = Array.isArray(vae.block_out_channels) ? vae.block_out_channels.length : 4;
  return {
    dir,
    modelIndex,
    schedulerConfig,
    vaeScaleFactor: 2 ** (blocks - 1),
    vaeScalingFactor: num(vae.scaling_factor, 0.18215),
    latentChannels: num(vae.latent_channels, num(unet.out_channels, 4)),
    sampleSize: num(unet.sample_size, 64),
    vaeSampleSize: num(vae.sample_size, 2 ** (blocks - 1) * num(unet.sample_size, 64)),
  };
}
