import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from './fixtures.js';

export interface AssembledModel {
  dir: string;
  remove(): void;
}

/**
 * One diffusers ONNX folder from a fixture that ships only its UNet and scheduler (tiny-lcm,
 * tiny-sd-inpaint) and tiny-sd's text encoder, VAE and tokenizer, whose weights the references
 * used. Folders are linked ('junction' so Windows needs no privilege), model_index.json copied.
 */
export function assembleModel(fixture: 'tiny-lcm' | 'tiny-sd-inpaint' | 'tiny-sd-depth' | 'tiny-sd-control', options: { depthEstimator?: boolean } = {}): AssembledModel {
  const dir = mkdtempSync(join(tmpdir(), `diffuse-${fixture}-`));
  for (const part of ['text_encoder', 'vae_decoder', 'vae_encoder', 'tokenizer']) symlinkSync(join(FIXTURES, 'tiny-sd', part), join(dir, part), 'junction');
  for (const part of ['unet', 'scheduler']) symlinkSync(join(FIXTURES, fixture, part), join(dir, part), 'junction');
  // tiny-dpt's DPT and its processor settings, where stabilityai/stable-diffusion-2-depth keeps them.
  if (options.depthEstimator) for (const part of ['depth_estimator', 'feature_extractor']) symlinkSync(join(FIXTURES, 'tiny-dpt', part), join(dir, part), 'junction');
  copyFileSync(join(FIXTURES, fixture, 'model_index.json'), join(dir, 'model_index.json'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A tiny SDXL folder from tiny-sdxl-refiner, tiny-sdxl-inpaint or tiny-sdxl-fp16 (their UNet, scheduler and
 * model_index.json) and tiny-sdxl's VAE and text encoders — only the second for the refiner, as
 * the refiner's own export has.
 */
export function assembleSdxl(fixture: 'tiny-sdxl-refiner' | 'tiny-sdxl-inpaint' | 'tiny-sdxl-fp16'): AssembledModel {
  const dir = mkdtempSync(join(tmpdir(), `diffuse-${fixture}-`));
  const shared = fixture === 'tiny-sdxl-refiner' ? ['text_encoder_2', 'tokenizer_2'] : ['text_encoder', 'tokenizer', 'text_encoder_2', 'tokenizer_2'];
  for (const part of [...shared, 'vae_decoder', 'vae_encoder']) symlinkSync(join(FIXTURES, 'tiny-sdxl', part), join(dir, part), 'junction');
  for (const part of ['unet', 'scheduler']) symlinkSync(join(FIXTURES, fixture, part), join(dir, part), 'junction');
  copyFileSync(join(FIXTURES, fixture, 'model_index.json'), join(dir, 'model_index.json'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * tiny-sd with a safety checker from tiny-safety where SD 1.x folders keep it (safety_checker/,
 * feature_extractor/): the crafted checker or the one whose every threshold is -1 (flags everything).
 */
export function assembleWithSafetyChecker(checker: 'safety_checker' | 'safety_checker-flags-all'): AssembledModel {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-safety-'));
  for (const part of ['text_encoder', 'vae_decoder', 'vae_encoder', 'tokenizer', 'unet', 'scheduler']) symlinkSync(join(FIXTURES, 'tiny-sd', part), join(dir, part), 'junction');
  symlinkSync(join(FIXTURES, 'tiny-safety', checker), join(dir, 'safety_checker'), 'junction');
  symlinkSync(join(FIXTURES, 'tiny-safety', 'feature_extractor'), join(dir, 'feature_extractor'), 'junction');
  copyFileSync(join(FIXTURES, 'tiny-sd', 'model_index.json'), join(dir, 'model_index.json'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
