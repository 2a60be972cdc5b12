// diffuse img2txt IMAGE (alias interrogate): the prompt a picture suggests, on stdout, so that
// `diffuse txt2img "$(diffuse img2txt a.png)"` works; --json for the caption and the scored terms.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { readImageFile } from '../image/load-image.js';
import { cacheRoot } from '../models/index.js';
import { Interrogator } from '../pipeline/interrogate/interrogate.js';
import { SHIPPED_TERMS } from '../pipeline/interrogate/term-lists.js';
import { IMG2TXT_OPTIONS, img2txtSettings, type Img2txtOptionSpec, type Img2txtSettings } from './img2txt-options.js';
import { chooseInterrogator, interrogatorRef } from './interrogator-choice.js';

export function defineImg2txt(cmd: Command): Command {
  cmd.argument('<image>', 'PNG, JPEG or WebP file');
  for (const o of IMG2TXT_OPTIONS as readonly Img2txtOptionSpec[]) cmd.option(o.flags, `${o.description} (default: ${o.defaultText})`);
  return cmd.action(async (image: string, raw: Record<string, unknown>) => {
    await interrogate(image, img2txtSettings(raw));
  });
}

/**
 * The folders: each flag, else <model>/<part>, else the registry's blip-base and clip-vit-large-patch14 (pulled as
 * models are, BLIP converted on first use). Term lists: --terms, else <model>/terms when it exists (an A1111
 * models/interrogate folder as it is), else the shipped lists. A --model folder that does not exist is named before
 * anything loads or downloads.
 */
async function folders(settings: Img2txtSettings): Promise<{ blip: string; clip: string; terms?: string }> {
  const model = settings.model ?? join(cacheRoot(), 'interrogate');
  if (settings.model !== undefined && !existsSync(model)) {
    throw new UsageError(`--model: interrogator folder not found: ${model} (it holds blip/ and clip/, and terms/ if not the shipped lists; the README's img2txt section says where to get them)`);
  }
  const choice = { offline: false, yes: settings.yes, quiet: false };
  const blip = await chooseInterrogator('blip', interrogatorRef('blip', settings.blip, model), choice);
  const clip = await chooseInterrogator('clip', interrogatorRef('clip', settings.clip, model), choice);
  const terms = settings.terms ?? (existsSync(join(model, 'terms')) ? join(model, 'terms') : undefined);
  return { blip, clip, ...(terms !== undefined ? { terms } : {}) };
}

async function interrogate(path: string, settings: Img2txtSettings): Promise<void> {
  const dirs = await folders(settings);
  // A1111 hands the interrogator image.convert("RGB"): alpha dropped, not composited
  const { rgb } = await readImageFile(path, 'image', { alpha: 'drop' });
  const sessions = { device: settings.device, ...(settings.threads ? { threads: settings.threads } : {}) };
  const interrogator = await Interrogator.open({ ...dirs, ...(settings.featureCache ? { featureCache: join(cacheRoot(), 'interrogate-features') } : {}) }, sessions);
  try {
    const result = await interrogator.run({ image: rgb, mode: settings.mode, minLength: settings.minLength, maxLength: settings.maxLength, ranks: settings.ranks });
    if (settings.json) {
      const lists = interrogator.lists.map((l) => ({ name: l.name, sha256: l.sha256, terms: l.items.length }));
      const record = { image: path, mode: settings.mode, caption: result.caption, prompt: result.prompt, terms: result.terms, termLists: { source: dirs.terms ?? SHIPPED_TERMS.source, lists } };
      process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    } else process.stdout.write(`${result.prompt}\n`);
  } finally {
    await interrogator.release();
  }
}
