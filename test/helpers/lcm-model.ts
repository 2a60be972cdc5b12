import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from './fixtures.js';

/** Parts of the assembled LCM model and the fixture each comes from. */
const FROM_TINY_SD = ['text_encoder', 'vae_decoder', 'vae_encoder', 'tokenizer'] as const;
const FROM_TINY_LCM = ['unet', 'scheduler'] as const;

export interface LcmModel {
  dir: string;
  remove(): void;
}

/**
 * The tiny LCM as one diffusers ONNX folder: tiny-lcm ships only its UNet, scheduler and model
 * index, and shares tiny-sd's text encoder, VAE and tokenizer (the weights the reference used).
 * Folders are linked ('junction' so Windows needs no privilege), the one file is copied.
 */
export function assembleLcmModel(): LcmModel {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-tiny-lcm-'));
  for (const part of FROM_TINY_SD) symlinkSync(join(FIXTURES, 'tiny-sd', part), join(dir, part), 'junction');
  for (const part of FROM_TINY_LCM) symlinkSync(join(FIXTURES, 'tiny-lcm', part), join(dir, part), 'junction');
  copyFileSync(join(FIXTURES, 'tiny-lcm', 'model_index.json'), join(dir, 'model_index.json'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
