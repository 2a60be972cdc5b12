import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { openWeightFile } from '../checkpoint-store.js';
import { CheckpointError } from '../errors.js';
import type { StoredTensor } from './lora-delta.js';
import { isSdxlKey, parseLoraKey } from './lora-keys.js';

/**
 * A LoRA/LyCORIS file: its keys grouped by the module they patch (read from the header alone),
 * its content hash and A1111's short hash; the tensors are read only when a merge needs them.
 */

export interface LoraPart {
  key: string;
  shape: number[];
}

export interface LoraFile {
  path: string;
  /** File name without extension: what `<lora:name>` calls it. */
  name: string;
  /** kohya module name → part (lora_down.weight, alpha, hada_w1_a, ...) → the file's key. */
  modules: Map<string, Map<string, LoraPart>>;
  /** Keys of no known LoRA layout (reported as unused). */
  unknownKeys: string[];
  /** The safetensors __metadata__ (kohya's ss_* training records). */
  metadata: Record<string, string>;
  /** Whether any key names SDXL's modules (its second text encoder). */
  sdxl: boolean;
  /** SHA-256 of the tensor data (after a safetensors header; the whole file otherwise): what a merge depends on. */
  contentHash: string;
  /** A1111's "Lora hashes" entry: kohya's recorded sshs_model_hash, else the content hash, 12 hex digits. */
  a1111Hash: string;
}

export async function openLoraFile(path: string): Promise<LoraFile> {
  const store = await openWeightFile(path);
  const modules = new Map<string, Map<string, LoraPart>>();
  const unknownKeys: string[] = [];
  let sdxl = false;
  try {
    for (const key of store.keys()) {
      sdxl ||= isSdxlKey(key);
      const parsed = parseLoraKey(key);
      const described = store.describe(key);
      if (!parsed || !described) {
        unknownKeys.push(key);
        continue;
      }
      const parts = modules.get(parsed.module) ?? new Map<string, LoraPart>();
      parts.set(parsed.part, { key, shape: described.shape });
      modules.set(parsed.module, parts);
    }
  } finally {
    await store.close();
  }
  if (modules.size === 0 && !sdxl) throw new CheckpointError(`${path} holds no LoRA or LyCORIS weights (no lora_unet_/lora_te_ or unet./text_encoder. keys)`);
  const contentHash = await tensorDataHash(path);
  const recorded = store.metadata['sshs_model_hash'];
  return {
    path,
    name: basename(path, extname(path)),
    modules,
    unknownKeys,
    metadata: store.metadata,
    sdxl,
    contentHash,
    a1111Hash: (recorded || contentHash).slice(0, 12),
  };
}

/** Every tensor of the modules whose names pass `wanted`, as float32. */
export async function readLoraTensors(file: LoraFile, wanted: (module: string) => boolean): Promise<Map<string, Map<string, StoredTensor>>> {
  const store = await openWeightFile(file.path);
  try {
    const out = new Map<string, Map<string, StoredTensor>>();
    for (const [module, parts] of file.modules) {
      if (!wanted(module)) continue;
      const tensors = new Map<string, StoredTensor>();
      for (const [part, { key, shape }] of parts) tensors.set(part, { shape, values: await store.read(key) });
      out.set(module, tensors);
    }
    return out;
  } finally {
    await store.close();
  }
}

/**
 * SHA-256 of a .safetensors file after its header — kohya's "addnet" hash, which A1111 records
 * for LoRAs, so editing the metadata keeps it — and of the whole file for other formats.
 */
async function tensorDataHash(path: string): Promise<string> {
  let start = 0;
  if (extname(path).toLowerCase() === '.safetensors') {
    const handle = await open(path, 'r');
    try {
      const first8 = Buffer.alloc(8);
      await handle.read(first8, 0, 8, 0);
      start = 8 + Number(first8.readBigUInt64LE(0));
    } finally {
      await handle.close();
    }
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { start })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
