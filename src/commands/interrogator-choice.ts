import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { ensureConvertedBlip, isBlipSource } from '../graphs/blip-convert.js';
import { findInterrogator, loadRegistry, type InterrogatorPart } from '../models/index.js';
import { convertedCache } from './convert.js';
import { convertProgress } from './convert-progress.js';
import { resolveOrPull } from './model-choice.js';

/** The models img2txt uses when neither the flag nor the interrogator folder names one: A1111's pair. */
export const DEFAULT_INTERROGATORS: Readonly<Record<InterrogatorPart, string>> = { blip: 'blip-base', clip: 'clip-vit-large-patch14' };

export interface InterrogatorChoice {
  offline: boolean;
  yes: boolean;
  quiet: boolean;
}

/**
 * --blip or --clip to a folder the captioner or ranker opens: a registry entry of that part (pulled as models are:
 * with --yes, after a question on a terminal, else refused with the pull command), or a folder. BLIP weights (a Hub
 * folder with model.safetensors and no graphs, which is what the registry's BLIP entries are) are converted once into
 * the cache; a folder that does not exist is named before anything loads.
 */
export async function chooseInterrogator(part: InterrogatorPart, ref: string, options: InterrogatorChoice): Promise<string> {
  const registry = loadRegistry();
  const entry = findInterrogator(registry, ref);
  let dir: string;
  if (entry) {
    if (entry.part !== part) throw new UsageError(`--${part} ${ref} is a ${entry.part.toUpperCase()} model; pass it as --${entry.part}`);
    dir = (await resolveOrPull(ref, { offline: options.offline }, options.yes, options.quiet)).dir;
  } else {
    dir = resolve(ref);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      const ids = registry.interrogators.filter((m) => m.part === part).map((m) => m.id);
      throw new UsageError(`--${part} ${ref}: no such folder, nor a ${part.toUpperCase()} model of the registry (${ids.join(', ') || 'none listed'})`);
    }
  }
  if (part !== 'blip' || !isBlipSource(dir)) return dir;
  const progress = convertProgress({ quiet: options.quiet });
  try {
    return await ensureConvertedBlip(dir, convertedCache(), progress.listener);
  } finally {
    progress.stop();
  }
}

/** The flag's value, else the interrogator folder's <part>/ when it has one, else the registry's default. */
export function interrogatorRef(part: InterrogatorPart, flag: string | undefined, model: string): string {
  return flag ?? (existsSync(join(model, part)) ? join(model, part) : DEFAULT_INTERROGATORS[part]);
}
