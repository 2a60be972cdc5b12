import { createHash, randomBytes } from 'node:crypto';
import { constants, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { ModelLoadError } from '../errors.js';
import { externalDataLocations } from './initializers.js';
import { ModelProto } from './proto.js';
import { SOURCE_FILE, recordSource } from './derived-source.js';

/**
 * Edited copies of an ONNX graph, cached on disk so the surgery runs once per (model, edit).
 * An entry is a folder holding the edited model.onnx, hard links to the source's external-data
 * files at the same relative locations (so the edited graph still finds its weights), and the
 * edit's JSON result. The key covers the source's sha256, the edit, and each external file's
 * real path, size and mtime: two exports can share a byte-identical model.onnx and differ only
 * in their weights file, and a re-downloaded weights file must not reuse a link to the old one.
 */

export interface CachedEdit<T> {
  path: string;
  result: T;
  /** Whether the entry was already there. */
  hit: boolean;
}

const MODEL_FILE = 'model.onnx';
const RESULT_FILE = 'edit.json';

function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Rejects locations that would leave the model's folder (ONNX requires relative paths inside it). */
function checkedLocation(location: string, source: string): string {
  const norm = normalize(location);
  if (location === '' || isAbsolute(location) || norm.split(/[\\/]/).includes('..')) {
    throw new ModelLoadError(`${source}: external data location '${location}' is outside the model's folder`);
  }
  return norm;
}

/**
 * A hard link, not a symlink: ONNX Runtime (1.30) resolves symlinks and refuses external data
 * that ends up outside the model's folder. Across volumes it must be a copy (a reflink where
 * the file system can).
 */
function linkInto(target: string, file: string): void {
  mkdirSync(dirname(target), { recursive: true });
  try {
    linkSync(file, target);
  } catch {
    try {
      copyFileSync(file, target, constants.COPYFILE_FICLONE);
    } catch (err) {
      throw new ModelLoadError(`cannot link or copy external data ${file} into the model cache: ${(err as Error).message}`, { cause: err });
    }
  }
}

interface EditOptions {
  source: string;
  cacheDir: string;
  /** Short readable prefix for the entry folder, e.g. 'text-encoder'. */
  label: string;
  /** Everything the edit depends on besides the source bytes, as JSON-able data. */
  editKey: unknown;
}

interface EditedModel<T> {
  model: Uint8Array;
  result: T;
  /**
   * New weights the edited graph reads as external data from `file` beside it (a LoRA merge's
   * merged tensors): an async edit writes them to its staging path, which becomes that file.
   */
  data?: { file: string; from: string };
}

/** An entry's key and place, and how to read or write it; `bytes` is the source model's. */
function cacheEntry<T>(options: EditOptions) {
  const { source, cacheDir } = options;
  const bytes = new Uint8Array(readFileSync(source));
  const sourceDir = dirname(source);
  const external = externalDataLocations(ModelProto.decode(bytes).graph).map((location) => {
    const rel = checkedLocation(location, source);
    const file = join(sourceDir, rel);
    if (!existsSync(file)) throw new ModelLoadError(`${source}: external data file ${rel} is missing`);
    const st = statSync(file);
    return { rel, file, real: realpathSync(file), size: st.size, mtimeMs: st.mtimeMs };
  });
  const key = sha256(
    JSON.stringify({ source: sha256(bytes), edit: options.editKey, external: external.map(({ rel, real, size, mtimeMs }) => ({ rel, real, size, mtimeMs })) }),
  );
  const dir = join(cacheDir, `${options.label}-${key.slice(0, 24)}`);
  const done = (hit: boolean): CachedEdit<T> => ({
    path: join(dir, MODEL_FILE),
    result: JSON.parse(readFileSync(join(dir, RESULT_FILE), 'utf8')) as T,
    hit,
  });
  const write = ({ model, result, data }: EditedModel<T>): CachedEdit<T> => {
    // Built aside and renamed into place, so a crash or a concurrent run never leaves half an entry.
    const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      mkdirSync(tmp, { recursive: true });
      writeFileSync(join(tmp, MODEL_FILE), model);
      for (const { rel, file } of external) {
        if (rel === MODEL_FILE || rel === SOURCE_FILE || rel.startsWith(RESULT_FILE) || rel === data?.file) throw new ModelLoadError(`${source}: external data named ${rel} clashes with the cache layout`);
        linkInto(join(tmp, rel), file);
      }
      if (data) renameSync(data.from, join(tmp, data.file));
      writeFileSync(join(tmp, RESULT_FILE), JSON.stringify(result));
      recordSource(tmp, source);
      try {
        renameSync(tmp, dir);
      } catch (err) {
        // Someone else finished the same entry first: theirs is identical.
        if (!existsSync(join(dir, RESULT_FILE))) throw err;
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return done(false);
  };
  const staging = () => `${dir}.staging-${process.pid}-${randomBytes(4).toString('hex')}`;
  return { bytes, sourceDir, hit: existsSync(join(dir, RESULT_FILE)), done, write, staging };
}

/** The edit runs only when the cache has no entry for (source, editKey). */
export function cachedModelEdit<T>(options: EditOptions & { edit: (model: Uint8Array) => EditedModel<T> }): CachedEdit<T> {
  const entry = cacheEntry<T>(options);
  return entry.hit ? entry.done(true) : entry.write(options.edit(entry.bytes));
}

/**
 * As cachedModelEdit, for edits that run models (calibration, a merge's products); they also get
 * the source's folder for its weights and a staging path (in the cache folder, so the finished
 * file moves into the entry by a rename) where they may write new external data.
 */
export async function cachedModelEditAsync<T>(
  options: EditOptions & { edit: (model: Uint8Array, sourceDir: string, staging: string) => Promise<EditedModel<T>> },
): Promise<CachedEdit<T>> {
  const entry = cacheEntry<T>(options);
  if (entry.hit) return entry.done(true);
  const staging = entry.staging();
  mkdirSync(options.cacheDir, { recursive: true });
  try {
    return entry.write(await options.edit(entry.bytes, entry.sourceDir, staging));
  } finally {
    rmSync(staging, { force: true });
  }
}
