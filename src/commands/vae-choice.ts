import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { CheckpointError } from '../graphs/errors.js';
import { ensureConvertedVae, readVaeRecord, vaeFiles } from '../graphs/vae-convert.js';
import { findVae, loadRegistry, resolveModel, ModelNotCachedError, UnknownModelError } from '../models/index.js';
import { convertedCache } from './convert.js';
import { convertProgress } from './convert-progress.js';
import { resolveOrPull } from './model-choice.js';

/** A VAE ready for the pipeline: the folder of its ONNX graphs, and whether it is TAESD. */
export interface ChosenVae {
  dir: string;
  tiny: boolean;
}

function chosen(dir: string): ChosenVae {
  return { dir, tiny: readVaeRecord(dir)?.kind === 'taesd' };
}

/**
 * --vae to a folder of VAE graphs: a registry VAE id (`taesd`, pulled as models are), a diffusers
 * ONNX VAE folder as it is, or VAE weights (a file, a diffusers VAE folder, a taesd_decoder file)
 * converted once into the cache, with progress on stderr.
 */
export async function chooseVae(ref: string, options: { offline: boolean; yes: boolean; quiet: boolean; scalingFactor: number }): Promise<ChosenVae> {
  const registry = loadRegistry();
  const entry = findVae(registry, ref);
  if (entry) {
    const sdxl = isSdxlLatents(options.scalingFactor);
    if ((entry.family === 'sdxl') !== sdxl) {
      const other = registry.vaes.find((v) => v.kind === entry.kind && (v.family === 'sdxl') === sdxl);
      throw new UsageError(`--vae ${ref} decodes ${entry.family === 'sdxl' ? 'SDXL' : 'SD 1.x/2.x'} latents, not this model's${other ? `; use --vae ${other.id}` : ''}`);
    }
    const pulled = await resolveOrPull(ref, { offline: options.offline }, options.yes, options.quiet);
    return chosen(await convertQuietly(pulled.dir, true));
  }
  const path = resolve(ref);
  if (!existsSync(path)) {
    throw new UsageError(`--vae ${ref}: no such file or folder, nor a VAE of the registry (${registry.vaes.map((v) => v.id).join(', ')}); pass a VAE file (.safetensors, .ckpt, .pt), a VAE folder or a registry id`);
  }
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'vae_decoder', 'model.onnx'))) return chosen(path);
    try {
      vaeFiles(path);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      throw new UsageError(`--vae ${ref}: no vae_decoder/model.onnx there, nor VAE weights (diffusion_pytorch_model.safetensors, a taesd_decoder file); pass a VAE folder in the diffusers ONNX layout or a VAE file`, { cause: err });
    }
  }
  return chosen(await convertQuietly(path, options.quiet));
}

async function convertQuietly(path: string, quiet: boolean): Promise<string> {
  const progress = convertProgress({ quiet });
  try {
    return await ensureConvertedVae(path, convertedCache(), progress.listener);
  } finally {
    progress.stop();
  }
}

/**
 * The installed TAESD for a model's latents (taesd for SD 1.x/2.x, taesdxl for SDXL's scaling
 * factor), converted on first use; undefined when it is not downloaded (previews then use the
 * latent-to-RGB approximation). Never downloads.
 */
export async function installedTaesd(scalingFactor: number, quiet: boolean): Promise<ChosenVae | undefined> {
  try {
    const found = await resolveModel(taesdIdFor(scalingFactor), { offline: true, allowDownload: false });
    return chosen(await convertQuietly(found.dir, quiet));
  } catch (err) {
    // Not downloaded, or not in this registry (DIFFUSE_REGISTRY lists its own).
    if (err instanceof ModelNotCachedError || err instanceof UnknownModelError) return undefined;
    throw err;
  }
}

/** SDXL's VAE scaling factor, which tells its latent space from SD 1.x/2.x's (0.18215). */
const SDXL_SCALING_FACTOR = 0.13025;

/** Whether a model's VAE scaling factor is SDXL's: same latent shapes, another latent space. */
export function isSdxlLatents(scalingFactor: number): boolean {
  return Math.abs(scalingFactor - SDXL_SCALING_FACTOR) < 1e-6;
}

/** The registry TAESD for a model's latents. */
export function taesdIdFor(scalingFactor: number): 'taesd' | 'taesdxl' {
  return isSdxlLatents(scalingFactor) ? 'taesdxl' : 'taesd';
}
