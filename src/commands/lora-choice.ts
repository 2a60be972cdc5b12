import { join } from 'node:path';
import { openWeightFile } from '../graphs/checkpoint-store.js';
import { findLora, loadRegistry, type LoraEntry, type Recommended } from '../models/index.js';
import { readModelFiles } from '../pipeline/model-files.js';
import { filesByName, LORA_EXTENSIONS, promptLoraNames } from '../settings/networks.js';
import { refuseOtherFamily } from './family-check.js';
import { readPulled, resolveOrPull } from './model-choice.js';

export interface RegistryLoras {
  /** The pulled file of each registry LoRA the prompt names, by id. */
  files: Map<string, string>;
  /** The first of them that recommends settings (a distillation LoRA: its sampler, steps and CFG). */
  recommended?: Recommended;
}

/**
 * `<lora:lcm-lora-sdv1-5:1>` with no file of that name in --lora-dir: the registry's LoRA of that id, its family
 * checked against the model's before anything downloads, then pulled as models are (with --yes, after a question on a
 * terminal, else refused with the pull command). A file of the same name in --lora-dir wins, as A1111 finds LoRAs by
 * file name.
 */
export async function chooseRegistryLoras(
  prompt: string, loraDir: string | undefined, modelDir: string, options: { offline: boolean; yes: boolean; quiet: boolean },
): Promise<RegistryLoras> {
  const names = new Set(promptLoraNames(prompt));
  if (names.size === 0) return { files: new Map() };
  const registry = loadRegistry();
  const named = [...names].map((n) => findLora(registry, n)).filter((e): e is LoraEntry => e !== undefined);
  // --lora-dir and the model folder are read here only for a prompt that names a registry LoRA (most name none).
  if (named.length === 0) return { files: new Map() };
  const local = loraDir ? filesByName(loraDir, LORA_EXTENSIONS, '--lora-dir') : new Map<string, string>();
  const entries = named.filter((e) => !local.has(e.id));
  if (entries.length === 0) return { files: new Map() };
  const files = readModelFiles(modelDir);
  for (const entry of entries) refuseOtherFamily(`<lora:${entry.id}>`, entry, 'LoRA', files);
  const pulled = new Map<string, string>();
  for (const entry of entries) {
    const { dir } = await resolveOrPull(entry.id, { offline: options.offline }, options.yes, options.quiet);
    const path = join(dir, entry.files[0]!);
    await readPulled(entry.id, async () => (await openWeightFile(path)).close());
    pulled.set(entry.id, path);
  }
  const recommended = entries.find((e) => e.recommended)?.recommended;
  return { files: pulled, ...(recommended ? { recommended } : {}) };
}
