import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readInputFile } from '../input-file.js';
import { resolveSettings } from '../settings/config.js';
import type { Settings } from '../settings/options.js';
import { INPUT_KEYS, type Asset } from './assets.js';

/** Settings of the machine, not of the picture: the lock records the provider on its own. */
const MACHINE_KEYS: readonly (keyof Settings)[] = ['device', 'threads', 'optimizedCache', 'offline', 'yes', 'output', 'overwrite', 'quality', 'preview', 'previewEvery', 'previewMethod', 'batchCount'];

/** Pictures and masks; the image reader refuses more than 8192x8192 pixels anyway. */
const MAX_INPUT_BYTES = 512 * 2 ** 20;

/**
 * The SHA-256 of everything about an output but the model's weights (hashed on their own): its
 * command, prompt, every setting as the option parsers read it (defaults included, so a changed
 * default shows), the post-steps and the bytes of its input files (not their paths: the lock is
 * the same on every machine and checkout).
 */
export async function paramsHash(asset: Asset, projectDir: string): Promise<string> {
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
  const described = { command: asset.command, prompt: asset.prompt, settings: kept, inputs, post: asset.post, format: asset.format };
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
