import { existsSync, statSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { cacheRoot, convertedFolder, modelPaths, modelsFolder } from './cache-layout.js';
import { CacheError, HubNotFoundError, LocalModelError, ModelsError } from './errors.js';
import { hashFile } from './hash.js';
import { readLocalModels, removeLocalModel, type LocalModel } from './local.js';
import { acquireLock, type LockOptions } from './lock.js';
import { matchesRemote, readManifest, writeManifest, type Manifest } from './manifest.js';
import type { VerifyProgress } from './progress.js';
import { parseModelRef, type ModelRef } from './ref.js';
import { loadRegistry, TASKS, type Registry, type Task } from './registry.js';
import { pullTargetFor, wantedFiles, type CacheOptions, type FileChoice } from './target.js';
import { safeJoin } from './safe-path.js';
import { pruneOrphans, removeDerivedOf } from '../onnx/derived-source.js';

/**
 * The cache as the `diffuse models list | rm | verify` commands see it, and the "is this model
 * here, complete, for this task?" question resolve.ts asks before anything touches the network.
 */

/** Whether every file `choice` needs is recorded as verified and present with its size. */
export function isComplete(manifest: Manifest, snapshot: string, registry: Registry, choice: FileChoice, pins?: Record<string, string>): boolean {
  let wanted;
  try {
    wanted = wantedFiles(manifest.listing, registry, choice, `${manifest.repo}@${manifest.revision}`);
  } catch (err) {
    if (err instanceof HubNotFoundError) return false;
    throw err;
  }
  const have = new Map(manifest.files.map((f) => [f.path, f]));
  return wanted.every((file) => {
    const record = have.get(file.path);
    if (!record || !matchesRemote(record, file, pins?.[file.path])) return false;
    const full = safeJoin(snapshot, file.path);
    return existsSync(full) && statSync(full).size === file.size;
  });
}

/** The snapshot folder of repo@revision if it holds everything `choice` needs. */
export async function findCachedSnapshot(root: string, repo: string, revision: string, registry: Registry, choice: FileChoice, pins?: Record<string, string>): Promise<string | undefined> {
  const paths = modelPaths(root, repo, revision);
  const manifest = await readManifest(paths.manifest);
  return manifest && isComplete(manifest, paths.snapshot, registry, choice, pins) ? paths.snapshot : undefined;
}

export interface CachedModel {
  key: string;
  repo: string;
  revision: string;
  commit?: string;
  dir: string;
  /** Registry ids that name this repo@revision. */
  ids: string[];
  files: number;
  /** Bytes of verified files. */
  bytes: number;
  /** Bytes in .part files waiting for a resume. */
  partialBytes: number;
  /** Tasks whose files are all here. */
  tasks: Task[];
}

export interface LocalListing extends LocalModel {
  id: string;
}

/** Sum of .part file sizes under dir (no symlinks followed, depth-limited). */
async function partialBytesUnder(dir: string, depth = 0): Promise<number> {
  if (depth > 16) return 0;
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) total += await partialBytesUnder(full, depth + 1);
    else if (entry.isFile() && entry.name.endsWith('.part')) total += (await stat(full)).size;
  }
  return total;
}

export async function listModels(options: CacheOptions = {}): Promise<{ cached: CachedModel[]; local: LocalListing[] }> {
  const root = options.home ?? cacheRoot();
  const registry = options.registry ?? loadRegistry();
  const cached: CachedModel[] = [];
  const folders = await readdir(modelsFolder(root), { withFileTypes: true }).catch(() => []);
  for (const folder of folders) {
    if (!folder.isDirectory()) continue;
    const base = join(modelsFolder(root), folder.name);
    const manifest = await readManifest(join(base, 'manifest.json')).catch(() => undefined);
    if (!manifest) continue;
    const snapshot = join(base, 'snapshot');
    const entries = registry.models.filter((m) => m.repo === manifest.repo && m.revision === manifest.revision);
    const pins = Object.assign({}, ...entries.map((e) => e.sha256 ?? {})) as Record<string, string>;
    // a PyTorch entry's folders are the same for every task: it serves the tasks it declares
    const pytorch = entries.some((e) => e.format === 'pytorch');
    const model: CachedModel = {
      key: folder.name,
      repo: manifest.repo,
      revision: manifest.revision,
      dir: snapshot,
      ids: [...entries, ...registry.vaes, ...registry.upscalers, ...registry.interrogators, ...registry.controlnets, ...registry.loras, ...registry.preprocessors].filter((e) => e.repo === manifest.repo && e.revision === manifest.revision).map((m) => m.id),
      files: manifest.files.length,
      bytes: manifest.files.reduce((sum, f) => sum + f.size, 0),
      partialBytes: await partialBytesUnder(snapshot),
      tasks: TASKS.filter((task) => (pytorch ? entries.some((e) => e.tasks.includes(task)) : true) && isComplete(manifest, snapshot, registry, { task, pytorch }, pins)),
    };
    if (manifest.commit) model.commit = manifest.commit;
    cached.push(model);
  }
  const local = Object.entries(await readLocalModels(root)).map(([id, m]) => ({ id, ...m }));
  return { cached: cached.sort((a, b) => a.key.localeCompare(b.key)), local };
}

export interface RemoveOptions extends CacheOptions {
  lock?: Pick<LockOptions, 'waitMs' | 'staleMs' | 'pollMs'>;
}

/**
 * `models rm`: deletes a cached repo@revision, or forgets a local id (its folder or file is kept)
 * and deletes what diffuse made of it in the cache: a checkpoint's conversions, or the converted
 * folder itself when the id names one (`diffuse convert --id`).
 */
export async function removeModel(ref: string | ModelRef, options: RemoveOptions = {}): Promise<{ kind: 'cache' | 'local'; path: string; derived?: string[] }> {
  const root = options.home ?? cacheRoot();
  const parsed = typeof ref === 'string' ? parseModelRef(ref) : ref;
  if (parsed.kind === 'id') {
    const forgotten = await removeLocalModel(root, parsed.id);
    if (forgotten !== undefined) {
      const converted = convertedFolder(root);
      const inCache = relative(converted, forgotten.path);
      const own = inCache !== '' && !inCache.startsWith('..') && !inCache.includes(sep) ? [forgotten.path] : [];
      for (const dir of own) await rm(dir, { recursive: true, force: true });
      const derived = [...own, ...(forgotten.checkpoint ? removeDerivedOf([converted], forgotten.path) : []), ...pruneDerivedGraphs(root)];
      return { kind: 'local', path: forgotten.path, ...(derived.length > 0 ? { derived } : {}) };
    }
  }
  const target = await pullTargetFor(parsed, options);
  const paths = modelPaths(root, target.repo, target.revision);
  if (!existsSync(paths.base)) throw new ModelsError(`${target.label} is not in the cache (${paths.base})`);
  // Defence in depth: never delete anything that is not a folder directly under <root>/models.
  const rel = relative(resolve(modelsFolder(root)), resolve(paths.base));
  if (rel === '' || rel.includes(sep) || rel.startsWith('..')) throw new CacheError(`refusing to delete ${paths.base}: not a cache folder`);
  const lock = await acquireLock(paths.lock, { waitMs: 0, ...options.lock });
  try {
    await rm(paths.base, { recursive: true, force: true });
  } finally {
    await lock.release();
  }
  return { kind: 'cache', path: paths.base, derived: pruneDerivedGraphs(root) };
}

/**
 * Deletes what diffuse derived from models that are gone: edited and optimised graphs (in the
 * cache's graphs/ and optimized/; the edited ones hold hard links to the model's weights) and
 * converted checkpoints and VAE files (converted/) whose file was deleted. Returns the folders deleted.
 */
export function pruneDerivedGraphs(root: string = cacheRoot()): string[] {
  return pruneOrphans([convertedFolder(root), join(root, 'graphs'), join(root, 'optimized')]);
}

export interface VerifyOptions extends CacheOptions {
  /** Delete files that fail and drop them from the manifest, so the next pull fetches them again. */
  fix?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: VerifyProgress) => void;
  lock?: Pick<LockOptions, 'waitMs' | 'staleMs' | 'pollMs'>;
}

export interface VerifyReport {
  dir: string;
  ok: string[];
  problems: { path: string; problem: 'missing' | 'size' | 'sha256' }[];
}

/** `models verify`: re-hashes every recorded file of a cached model against its manifest. */
export async function verifyModel(ref: string | ModelRef, options: VerifyOptions = {}): Promise<VerifyReport> {
  const root = options.home ?? cacheRoot();
  const parsed = typeof ref === 'string' ? parseModelRef(ref) : ref;
  if (parsed.kind === 'id' && (await readLocalModels(root))[parsed.id]) {
    throw new LocalModelError(`"${parsed.id}" is a local folder; only downloaded models have checksums to verify against`);
  }
  const target = await pullTargetFor(parsed, options);
  const paths = modelPaths(root, target.repo, target.revision);
  const lock = await acquireLock(paths.lock, { waitMs: 0, ...options.lock, signal: options.signal });
  try {
    const manifest = await readManifest(paths.manifest);
    if (!manifest) throw new ModelsError(`${target.label} is not in the cache; run \`diffuse models pull ${target.label}\``);
    const report: VerifyReport = { dir: paths.snapshot, ok: [], problems: [] };
    const totalBytes = manifest.files.reduce((sum, f) => sum + f.size, 0);
    let doneBytes = 0;
    for (const file of manifest.files) {
      const full = safeJoin(paths.snapshot, file.path);
      const size = existsSync(full) ? statSync(full).size : undefined;
      let problem: VerifyReport['problems'][number]['problem'] | undefined;
      if (size === undefined) problem = 'missing';
      else if (size !== file.size) problem = 'size';
      else {
        const digest = await hashFile(full, file.size, (n) => {
          doneBytes += n;
          options.onProgress?.({ doneBytes, totalBytes, path: file.path });
        }, options.signal);
        if (digest.sha256 !== file.sha256) problem = 'sha256';
      }
      if (problem) report.problems.push({ path: file.path, problem });
      else report.ok.push(file.path);
    }
    if (options.fix && report.problems.length > 0) {
      const bad = new Set(report.problems.map((p) => p.path));
      for (const path of bad) await rm(safeJoin(paths.snapshot, path), { force: true });
      await writeManifest(paths.manifest, { ...manifest, files: manifest.files.filter((f) => !bad.has(f.path)) });
    }
    return report;
  } finally {
    await lock.release();
  }
}
