import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from './fixtures.js';

/**
 * tiny-sd-inpaint ships only its 9-channel UNet (and scheduler); the text encoder, VAE and
 * tokenizer are tiny-sd's, linked into a temp folder to make one complete model.
 */
export function withInpaintUnet(): { dir: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-inpaint-'));
  const base = join(FIXTURES, 'tiny-sd');
  const inpaint = join(FIXTURES, 'tiny-sd-inpaint');
  for (const part of ['text_encoder', 'tokenizer', 'vae_encoder', 'vae_decoder']) symlinkSync(join(base, part), join(dir, part), 'junction');
  for (const part of ['unet', 'scheduler']) symlinkSync(join(inpaint, part), join(dir, part), 'junction');
  cpSync(join(inpaint, 'model_index.json'), join(dir, 'model_index.json'));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
