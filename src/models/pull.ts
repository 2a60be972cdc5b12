import { mkdir, statfs } from 'node:fs/promises';
import { linkSignals } from './abort.js';
import { cacheRoot, modelPaths } from './cache-layout.js';
import { downloadFiles, expectedChecksum, resumableBytes, type DownloadItem } from './download.js';
import { HubError, InsufficientDiskSpaceError, PullInterruptedError } from './errors.js';
import { hubOptionsFromEnv, listRepoFiles, resolveUrl, type HubOptions, type RepoListing } from './hub.js';
import { acquireLock, type LockOptions } from './lock.js';
import { matchesRemote, readManifest, withFile, writeManifest, type Manifest, type RemoteFile, type VerifiedFile } from './manifest.js';
import { TransferMeter, type ProgressListener } from './progress.js';
import { parseModelRef, type ModelRef } from './ref.js';
import { loadRegistry } from './registry.js';
import { safeJoin, unsafeRepoPathReason } from './safe-path.js';
import { pullTargetFor, targetChoice, targetPins, wantedFiles, type CacheOptions, type FileChoice, type PullTarget } from './target.js';

export interface PullOptions extends CacheOptions, FileChoice {
  /** Default: HF_ENDPOINT / HF_TOKEN from the environment. */
  hub?: HubOptions;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  concurrency?: number;
  retries?: number;
  retryDelayMs?: number;
  idleTimeoutMs?: number;
  lock?: Pick<LockOptions, 'waitMs' | 'staleMs' | 'pollMs'>;
  /** Free bytes where `dir` lives; default fs.statfs. */
  diskFree?: (dir: string) => Promise<number>;
}

export interface PullResult {
  dir: string;
  repo: string;
  revision: string;
  commit?: string;
  /** Every verified file of this repo@revision now in the cache (not only this pull's). */
  files: VerifiedFile[];
  downloadedBytes: number;
}

async function defaultDiskFree(dir: string): Promise<number> {
  const info = await statfs(dir);
  return info.bavail * info.bsize;
}

function toItems(hub: HubOptions, target: PullTarget, listing: RepoListing, files: readonly RemoteFile[]): DownloadItem[] {
  return files.map((file) => {
    const item: DownloadItem = { ...file, url: resolveUrl(hub, target.repo, listing.commit ?? target.revision, file.path) };
    const pin = targetPins(target)?.[file.path];
    if (pin) {
      if (file.sha256 && file.sha256 !== pin) {
        throw new HubError(`${target.label}: the Hub's sha256 for ${file.path} (${file.sha256}) differs from the pin in models.json (${pin}); the repo changed since the registry was written`);
      }
      item.pin = pin;
    }
    if (!expectedChecksum(item)) throw new HubError(`${target.label}: the Hub lists no checksum for ${file.path}, so it cannot be verified`);
    return item;
  });
}

/**
 * Downloads what `options` asks for of target into the cache and records it in the manifest.
 * Holds the model's lock throughout, so a second process (or a second call in this one) waits,
 * then finds the files already verified and fetches nothing.
 */
export async function pullRepo(target: PullTarget, options: PullOptions = {}): Promise<PullResult> {
  try {
    return await pullUnderLock(target, options);
  } catch (err) {
    // Ctrl-C at any stage (listing, waiting for the lock, downloading) reads the same to the user.
    if (options.signal?.aborted && !(err instanceof PullInterruptedError)) throw new PullInterruptedError({ cause: err });
    throw err;
  }
}

async function pullUnderLock(target: PullTarget, options: PullOptions): Promise<PullResult> {
  const registry = options.registry ?? loadRegistry();
  const hub = options.hub ?? hubOptionsFromEnv();
  const paths = modelPaths(options.home ?? cacheRoot(), target.repo, target.revision);
  const emit = options.onProgress;
  const what = `${target.repo}@${target.revision}`;

  emit?.({ type: 'listing', repo: target.repo, revision: target.revision });
  const listing = await listRepoFiles(hub, target.repo, target.revision, options.signal);
  const wanted = wantedFiles(listing.files, registry, targetChoice(target, options), what);
  // Every name is proven safe before anything is created on disk.
  for (const file of wanted) safeJoin(paths.snapshot, file.path);
  const items = toItems(hub, target, listing, wanted);

  await mkdir(paths.base, { recursive: true });
  const lock = await acquireLock(paths.lock, {
    ...options.lock,
    signal: options.signal,
    onWait: (holder) => emit?.({ type: 'waiting', pid: holder?.pid, host: holder?.host }),
  });
  try {
    // Read only under the lock: another process may have finished this very pull meanwhile.
    const previous = await readManifest(paths.manifest);
    let manifest: Manifest = {
      version: 1,
      repo: target.repo,
      revision: target.revision,
      endpoint: hub.endpoint,
      listing: listing.files.filter((f) => unsafeRepoPathReason(f.path) === undefined),
      files: previous?.files ?? [],
      updated: '',
    };
    if (listing.commit) manifest.commit = listing.commit;

    const have = new Map(manifest.files.map((f) => [f.path, f]));
    const todo = items.filter((item) => {
      const record = have.get(item.path);
      return !(record && matchesRemote(record, item, item.pin));
    });
    await mkdir(paths.snapshot, { recursive: true });
    const resumeBytes = await resumableBytes(paths.snapshot, todo);
    const totalBytes = todo.reduce((sum, f) => sum + f.size, 0);
    const free = await (options.diskFree ?? defaultDiskFree)(paths.base);
    if (totalBytes - resumeBytes > free) throw new InsufficientDiskSpaceError(totalBytes - resumeBytes, free, paths.base);
    emit?.({ type: 'plan', files: todo.length, totalBytes, cachedFiles: items.length - todo.length, resumeBytes });

    const meter = new TransferMeter(totalBytes, emit);
    const signal = linkSignals(options.signal, lock.lost);
    try {
      await downloadFiles(todo, {
        hub,
        repo: target.repo,
        dir: paths.snapshot,
        meter,
        concurrency: options.concurrency,
        retries: options.retries,
        retryDelayMs: options.retryDelayMs,
        idleTimeoutMs: options.idleTimeoutMs,
        signal: signal.signal,
        onVerified: async (file) => {
          manifest = { ...manifest, files: withFile(manifest.files, file) };
          await writeManifest(paths.manifest, manifest);
          emit?.({ type: 'file', path: file.path, size: file.size });
        },
      });
    } catch (err) {
      if (lock.lost.aborted && !options.signal?.aborted) throw lock.lost.reason;
      throw err;
    } finally {
      signal.dispose();
    }
    await writeManifest(paths.manifest, manifest);
    emit?.({ type: 'done', dir: paths.snapshot, downloadedBytes: meter.downloadedBytes });
    const result: PullResult = { dir: paths.snapshot, repo: target.repo, revision: target.revision, files: manifest.files, downloadedBytes: meter.downloadedBytes };
    if (manifest.commit) result.commit = manifest.commit;
    return result;
  } finally {
    await lock.release();
  }
}

/** `diffuse models pull <ref>`: a registry id or hf:org/repo[@rev]. */
export async function pullModel(ref: string | ModelRef, options: PullOptions = {}): Promise<PullResult> {
  const parsed = typeof ref === 'string' ? parseModelRef(ref) : ref;
  return pullRepo(await pullTargetFor(parsed, options), options);
}
