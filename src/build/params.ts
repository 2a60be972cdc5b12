import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { readInputFile } from '../input-file.js';
import { resolveSettings } from '../settings/config.js';
import { promptNetworks } from '../settings/networks.js';
import type { Settings } from '../settings/options.js';
import { listEmbeddingFiles, namedIn } from '../text/embeddings.js';
import { INPUT_KEYS, type Asset } from './assets.js';

/** Settings of the machine, not of the picture: the lock records the provider on its own. */
const MACHINE_KEYS: readonly (keyof Settings)[] = ['device', 'threads', 'optimizedCache', 'offline', 'yes', 'output', 'overwrite', 'quality', 'preview', 'previewEvery', 'previewMethod', 'batchCount'];

/** Pictures and masks; the image reader refuses more than 8192x8192 pixels anyway. */
const MAX_INPUT_BYTES = 512 * 2 ** 20;

/**
 * The SHA-256 of everything about an output but the model's weights (hashed on their own): its
 * command, prompt, every setting as the option parsers read it (defaults included, so a changed
 * default shows), the post-steps, the bytes of its input files (not their paths: the lock is
 * the same on every machine and checkout), the bytes of the LoRA, hypernetwork and embedding files
 * its prompts name, and `weights`: hashes of the refiner and VAE it names.
 */
export async function paramsHash(asset: Asset, projectDir: string, weights: Record<string, string> = {}): Promise<string> {
  const { settings } = resolveSettings({ values: {}, path: undefined, notRun: [] }, asset.values, asset.command);
  const kept: Record<string, unknown> = { ...settings };
  for (const key of MACHINE_KEYS) delete kept[key];
  const inputs: Record<string, string> = {};
  for (const key of INPUT_KEYS) {
    const path = asset.values[key];
    if (typeof path === 'string') {
      const bytes = await readInputFile(join(projectDir, path), { label: `${asset.where}: ${key}`, maxBytes: MAX_INPUT_BYTES });
      inputs[key] = createHash('sha256').update(bytes).digest('hex');
      delete kept[key];
    }
  }
  const networks = await networkHashes(asset.prompt, settings, projectDir);
  const described = { command: asset.command, prompt: asset.prompt, settings: kept, inputs, post: asset.post, format: asset.format, ...(Object.keys(networks).length ? { networks } : {}), ...(Object.keys(weights).length ? { weights } : {}) };
  return createHash('sha256').update(canonicalJson(described)).digest('hex');
}

/** JSON with object keys sorted at every level and undefined left out: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The SHA-256 of each network file the prompts call for, by kind and name: the LoRAs and
 * hypernetworks of the prompt's tags, and the embeddings whose names the prompt or the negative
 * prompt contains (the files a load reads). Folders are relative to the project, as in jobs.
 */
async function networkHashes(prompt: string, settings: Settings, projectDir: string): Promise<Record<string, string>> {
  const dir = (d: string | undefined) => (d === undefined ? undefined : resolve(projectDir, d));
  const { loras, hypernetworks } = promptNetworks(prompt, { loraDir: dir(settings.loraDir), hypernetworkDir: dir(settings.hypernetworkDir) });
  const files: [string, string][] = [...loras.map((l): [string, string] => [`lora:${l.name}`, l.path]), ...hypernetworks.map((h): [string, string] => [`hypernet:${h.name}`, h.path])];
  const embeddings = dir(settings.embeddingsDir);
  if (embeddings) for (const name of listEmbeddingFiles(embeddings)) if (namedIn(name, [prompt, settings.negativePrompt])) files.push([`embedding:${name}`, join(embeddings, name)]);
  const out: Record<string, string> = {};
  for (const [key, path] of files) out[key] = await fileSha256(path);
  return out;
}

/** Streamed: a LoRA or checkpoint-sized file is not read into memory at once. */
function fileSha256(path: string): Promise<string> {
  return new Promise((done, fail) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', fail)
      .on('end', () => done(hash.digest('hex')));
  });
}
