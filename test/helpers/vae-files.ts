import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, readJson } from './fixtures.js';
import { checkpointBytes, type ArrayRef, type InputRef, type Recipe } from './synthetic-checkpoint.js';

/** tools/make_vae_fixtures.py's files (written from their recipes) and references. */

export const VAE_FIXTURES = join(FIXTURES, 'vae-files');

export interface VaeFixtures {
  seeds: { kl: number; taesd: number; preview: number };
  kl: {
    ldm: { recipe: string; sha256: string; bytes: number };
    diffusers: { recipe: string; config: Record<string, unknown> };
    decoder: { latent_sample: InputRef; sample: ArrayRef };
    encoder: { sample: InputRef; latent_parameters: ArrayRef };
    pipeline: { case: string; image: ArrayRef };
  };
  taesd: {
    diffusers: { recipe: string; config: Record<string, unknown> };
    original: { decoder: string; encoder: string };
    decoder: { latent_sample: InputRef; sample: ArrayRef };
    encoder: { sample: InputRef; latents: ArrayRef };
  };
  taesd_mini: { original: { decoder: string; encoder: string }; pipeline: { case: string; image: ArrayRef } };
  latent2rgb: Record<'sd15' | 'sdxl', { factors: number[][]; bias: number[] | null; scale_factor: number; x0: InputRef & { times: number }; pixels: number[][][] }>;
}

export const vaeFixtures = (): VaeFixtures => readJson<VaeFixtures>(join(VAE_FIXTURES, 'cases.json'));

/** Writes `<dir>/<file>` from a recipe of test/fixtures/vae-files and returns its path. */
export function writeVaeFile(dir: string, recipe: string, file: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, file);
  writeFileSync(path, checkpointBytes(readJson<Recipe>(join(VAE_FIXTURES, recipe))));
  return path;
}

/** A diffusers VAE folder: config.json and diffusion_pytorch_model.safetensors. */
export function writeVaeFolder(dir: string, recipe: string, config: Record<string, unknown>): string {
  writeVaeFile(dir, recipe, 'diffusion_pytorch_model.safetensors');
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}
