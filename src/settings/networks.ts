import { readdirSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { UsageError } from '../errors.js';
import type { LoraChoice } from '../graphs/lora/apply-loras.js';
import { extractExtraNetworks, type ExtraNetworkTag } from '../text/extra-networks.js';
import type { Settings } from './options.js';

/**
 * The networks a prompt's tags call for, found in the folders the settings name: `<lora:name:te:unet>`
 * (A1111's extra_networks_lora: te defaults to 1, unet to te; `te=`, `unet=`, `dyn=` by name) in
 * --lora-dir. A name is a file's name without extension anywhere under the folder. The networks
 * become load options (they change weights); the prompt keeps its tags, which the pipeline drops
 * before encoding, as A1111 does.
 */

export interface PromptNetworks {
  loras: LoraChoice[];
}

export const LORA_EXTENSIONS = ['.safetensors', '.pt', '.ckpt'] as const;

/** Every file with one of `extensions` under `dir`, by name without extension. */
function filesByName(dir: string, extensions: readonly string[], flag: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (folder: string): void => {
    let entries;
    try {
      entries = readdirSync(folder, { withFileTypes: true });
    } catch (err) {
      throw new UsageError(`${flag} ${dir}: cannot list ${folder}: ${(err as Error).message}`, { cause: err });
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(folder, e.name);
      if (e.isDirectory()) walk(path);
      else if (extensions.includes(extname(e.name).toLowerCase())) {
        const name = basename(e.name, extname(e.name));
        if (found.has(name)) throw new UsageError(`${flag} ${dir}: two files are named '${name}' (${relative(dir, found.get(name)!)} and ${relative(dir, path)}); rename one`);
        found.set(name, path);
      }
    }
  };
  walk(dir);
  return found;
}

function number(raw: string, what: string, tag: string): number {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${tag}: ${what} '${raw}' is not a number`);
  return n;
}

function tagText(tag: ExtraNetworkTag): string {
  return `<${tag.kind}:${tag.items.join(':')}>`;
}

function loraChoice(tag: ExtraNetworkTag, files: Map<string, string>, dir: string): LoraChoice {
  const text = tagText(tag);
  const name = tag.positional[0] ?? '';
  const path = files.get(name);
  if (!path) {
    const known = [...files.keys()].slice(0, 8).join(', ');
    throw new UsageError(`${text}: no LoRA named '${name}' in --lora-dir ${dir} (${known ? `it has: ${known}` : 'it has none'})`);
  }
  let te = tag.positional.length > 1 ? number(tag.positional[1]!, 'the weight', text) : 1;
  if (tag.named['te'] !== undefined) te = number(tag.named['te'], 'te', text);
  let unet = tag.positional.length > 2 ? number(tag.positional[2]!, 'the UNet weight', text) : te;
  if (tag.named['unet'] !== undefined) unet = number(tag.named['unet'], 'unet', text);
  const dynRaw = tag.named['dyn'] ?? tag.positional[3];
  const dyn = dynRaw === undefined ? undefined : number(dynRaw, 'dyn', text);
  if (dyn !== undefined && (!Number.isInteger(dyn) || dyn < 1)) throw new UsageError(`${text}: dyn must be a whole number of at least 1`);
  return { path, name, te, unet, ...(dyn !== undefined ? { dyn } : {}) };
}

/** The networks of one prompt (the positive prompt: A1111 reads no tags from the negative one). */
export function promptNetworks(prompt: string, settings: Pick<Settings, 'loraDir'>): PromptNetworks {
  const { tags } = extractExtraNetworks(prompt);
  const loraTags = tags.filter((t) => t.kind === 'lora');
  if (loraTags.length === 0) return { loras: [] };
  if (!settings.loraDir) throw new UsageError(`the prompt uses ${tagText(loraTags[0]!)} but no --lora-dir is set; pass --lora-dir <folder of LoRA files>`);
  const files = filesByName(settings.loraDir, LORA_EXTENSIONS, '--lora-dir');
  return { loras: loraTags.map((t) => loraChoice(t, files, settings.loraDir!)) };
}

/** A key that tells two prompts' networks apart (prompts with the same key share a loaded model). */
export function networksKey(n: PromptNetworks): string {
  return JSON.stringify(n);
}
