import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashCheckpoint, type CheckpointHashes } from './checkpoint-hash.js';
import { convertCheckpoint, type ConvertProgress, type Precision } from './convert.js';
import type { Prediction } from './model-config.js';
import { CHECKPOINT_RECORD, CONVERTER_VERSION } from './model-folder.js';

/**
 * `--model ./dreamshaper_8.safetensors`: the checkpoint is converted once into a cache folder
 * named after its SHA-256 (and the precision, and the prediction type when one was forced),
 * and every later use finds that folder. Hashing a multi-gigabyte file takes a while, so the
 * hash is remembered per (real path, size, mtime), as A1111 keeps its cache.json.
 *
 *   <cacheDir>/hashes.json                          real path -> size, mtime, hashes
 *   <cacheDir>/<sha256 first 16>-<precision>[-<prediction>]/   the diffusers ONNX folder
 */

export type EnsureProgress = ConvertProgress | { stage: 'hash'; done: number; total: number };

export interface EnsureOptions {
  precision?: Precision;
  prediction?: Prediction;
  onProgress?: (event: EnsureProgress) => void;
}

/** Whether `path` is a file (a model folder is loaded as it is) that `--model` should convert. */
export function isCheckpointFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

const PYTORCH_WEIGHTS = /^(diffusion_pytorch_model|model|pytorch_model)(\.fp16)?\.(safetensors|bin)$/;

/**
 * A diffusers folder of PyTorch weights (what `diffuse convert` takes, and a Hub repo's main branch holds): a
 * model_index.json, no unet/model.onnx, and weights in a component folder. The ONNX layout is recognised by its
 * unet graph, so a folder with both is loaded as it is.
 */
export function isPytorchFolder(path: string): boolean {
  if (!existsSync(join(path, 'model_index.json')) || existsSync(join(path, 'unet', 'model.onnx'))) return false;
  return ['unet', 'text_encoder', 'text_encoder_2', 'vae'].some((part) => {
    try {
      return readdirSync(join(path, part)).some((name) => PYTORCH_WEIGHTS.test(name));
    } catch {
      return false;
    }
  });
}

/** Whether `--model` (or `models add`) names something to convert first: a checkpoint file or a PyTorch folder. */
export function needsConversion(path: string): boolean {
  return isCheckpointFile(path) || (existsSync(path) && statSync(path).isDirectory() && isPytorchFolder(path));
}

interface KnownHash extends CheckpointHashes {
  size: number;
  mtimeMs: number;
}

const HASHES = 'hashes.json';

async function readHashes(cacheDir: string): Promise<Record<string, KnownHash>> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(cacheDir, HASHES), 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, KnownHash>) : {};
  } catch {
    // Missing or damaged: hashes are recomputed, nothing else depends on the file.
    return {};
  }
}

/** The file's hashes, from hashes.json when the file is unchanged since they were computed. */
export async function checkpointHashes(path: string, cacheDir: string, onProgress?: EnsureOptions['onProgress']): Promise<CheckpointHashes> {
  const real = await realpath(path);
  const { size, mtimeMs } = await stat(real);
  const known = (await readHashes(cacheDir))[real];
  if (known && known.size === size && known.mtimeMs === mtimeMs) return { sha256: known.sha256, a1111Hash: known.a1111Hash, a1111OldHash: known.a1111OldHash };
  let done = 0;
  const hashes = await hashCheckpoint(real, (bytes) => onProgress?.({ stage: 'hash', done: (done += bytes), total: size }));
  await mkdir(cacheDir, { recursive: true });
  // Re-read before writing: another process may have added its own file meanwhile.
  const all = { ...(await readHashes(cacheDir)), [real]: { ...hashes, size, mtimeMs } };
  const tmp = join(cacheDir, `${HASHES}.${process.pid}.tmp`);
  await writeFile(tmp, JSON.stringify(all, null, 1));
  await rename(tmp, join(cacheDir, HASHES));
  return hashes;
}

function convertedFolderName(sha256: string, options: Pick<EnsureOptions, 'precision' | 'prediction'>): string {
  const prediction = options.prediction ? `-${options.prediction === 'v_prediction' ? 'v' : 'eps'}` : '';
  return `${sha256.slice(0, 16)}-${options.precision ?? 'fp32'}${prediction}`;
}

/** Folders appear by rename only when finished, so an entry without a current record is an older converter's. */
function isComplete(dir: string): boolean {
  try {
    const record = JSON.parse(readFileSync(join(dir, CHECKPOINT_RECORD), 'utf8')) as { converter?: unknown };
    return record.converter === CONVERTER_VERSION;
  } catch {
    return false;
  }
}

/**
 * What identifies a diffusers folder in the cache: its files' real paths, sizes and times (a
 * folder has no single checkpoint to hash, and A1111 gives it no Model hash).
 */
async function folderKey(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = await Promise.all(
    entries
      .filter((e) => e.isFile())
      .map(async (e) => {
        const path = await realpath(join(e.parentPath, e.name));
        const { size, mtimeMs } = await stat(path);
        return [path, size, mtimeMs] as const;
      }),
  );
  return createHash('sha256').update(JSON.stringify(files.sort((a, b) => (a[0] < b[0] ? -1 : 1)))).digest('hex');
}

/** The diffusers ONNX folder of a checkpoint (or diffusers folder), converting it first when the cache has none. */
export async function ensureConvertedModel(checkpointPath: string, cacheDir: string, options: EnsureOptions = {}): Promise<string> {
  const folder = statSync(checkpointPath).isDirectory();
  const hashes = folder ? undefined : await checkpointHashes(checkpointPath, cacheDir, options.onProgress);
  const dir = join(cacheDir, convertedFolderName(hashes?.sha256 ?? `d${await folderKey(checkpointPath)}`, options));
  if (isComplete(dir)) return dir;
  await rm(dir, { recursive: true, force: true });
  try {
    await convertCheckpoint(checkpointPath, dir, { precision: options.precision ?? 'fp32', ...(hashes ? { hashes } : {}), ...(options.prediction ? { prediction: options.prediction } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  } catch (err) {
    // Another process finished the same conversion first: theirs is identical.
    if (isComplete(dir)) return dir;
    throw err;
  }
  return dir;
}
