import { readdirSync } from 'node:fs';
import { basename, extname, join, relative } from 'node:path';
import { UsageError } from '../errors.js';
import type { LoraChoice } from '../graphs/lora/apply-loras.js';
import type { HypernetworkChoice } from '../graphs/hypernetwork/apply-hypernetworks.js';
import { extractExtraNetworks, type ExtraNetworkTag } from '../text/extra-networks.js';
import type { Settings } from './options.js';

/**
 * The networks a prompt's tags call for, found in the folders the settings name: `<lora:name:te:unet>`
 * (A1111's extra_networks_lora: te defaults to 1, unet to te; `te=`, `unet=`, `dyn=` by name) in
 * --lora-dir, `<hypernet:name:strength>` (strength 1 by default) in --hypernetwork-dir. A name is a file's name without extension anywhere under the folder. The networks
 * become load options (they change weights); the prompt keeps its tags, which the pipeline drops
 * before encoding, as A1111 does.
 */

export interface PromptNetworks {
  loras: LoraChoice[];
  hypernetworks: HypernetworkChoice[];
}

export const LORA_EXTENSIONS = ['.safetensors', '.pt', '.ckpt'] as const;
export const HYPERNETWORK_EXTENSIONS = ['.pt'] as const;

/** Every file with one of `extensions` under `dir`, by name without extension. */
export function filesByName(dir: string, extensions: readonly string[], flag: string): Map<string, string> {
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

function loraChoice(tag: ExtraNetworkTag, files: Map<string, string>, dir: string | undefined): LoraChoice {
  const text = tagText(tag);
  const name = tag.positional[0] ?? '';
  const path = files.get(name);
  if (!path) {
    if (!dir) throw new UsageError(`${text}: '${name}' is not a LoRA of the registry and no --lora-dir is set; pass --lora-dir <folder>`);
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

function hypernetworkChoice(tag: ExtraNetworkTag, files: Map<string, string>, dir: string | undefined): HypernetworkChoice {
  const text = tagText(tag);
  const name = tag.items[0] ?? '';
  const path = files.get(name);
  if (!path) {
    const known = [...files.keys()].slice(0, 8).join(', ');
    throw new UsageError(`${text}: no hypernetwork named '${name}' in --hypernetwork-dir ${dir} (${known ? `it has: ${known}` : 'it has none'})`);
  }
  // A1111's extra_networks_hypernet: the second item, 1 when absent.
  return { path, name, strength: tag.items.length > 1 ? number(tag.items[1]!, 'the strength', text) : 1 };
}

/**
 * The tags of one kind resolved against a folder (its files win) and the registry's files of that kind already
 * pulled, refused in one line when neither is there.
 */
function resolved<T>(
  tags: ExtraNetworkTag[], kind: string, dir: string | undefined, flag: string, extensions: readonly string[],
  choose: (t: ExtraNetworkTag, files: Map<string, string>, dir: string | undefined) => T, registered: ReadonlyMap<string, string> = new Map(),
): T[] {
  const mine = tags.filter((t) => t.kind === kind);
  if (mine.length === 0) return [];
  if (!dir && registered.size === 0) throw new UsageError(`the prompt uses ${tagText(mine[0]!)} but no ${flag} is set; pass ${flag} <folder>`);
  const files = new Map([...registered, ...(dir ? filesByName(dir, extensions, flag) : [])]);
  return mine.map((t) => choose(t, files, dir));
}

/** The LoRA names a prompt's tags use. */
export function promptLoraNames(prompt: string): string[] {
  return extractExtraNetworks(prompt).tags.filter((t) => t.kind === 'lora').map((t) => t.positional[0] ?? '');
}

/**
 * The networks of one prompt (the positive prompt: A1111 reads no tags from the negative one). `registryLoras`: the
 * registry LoRAs the prompt names that were pulled (commands/lora-choice.ts), by id; a file of that name in --lora-dir wins.
 */
export function promptNetworks(prompt: string, settings: Pick<Settings, 'loraDir' | 'hypernetworkDir'>, registryLoras?: ReadonlyMap<string, string>): PromptNetworks {
  const { tags } = extractExtraNetworks(prompt);
  return {
    loras: resolved(tags, 'lora', settings.loraDir, '--lora-dir', LORA_EXTENSIONS, loraChoice, registryLoras),
    hypernetworks: resolved(tags, 'hypernet', settings.hypernetworkDir, '--hypernetwork-dir', HYPERNETWORK_EXTENSIONS, hypernetworkChoice),
  };
}
