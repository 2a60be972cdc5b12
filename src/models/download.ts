import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { linkSignals } from './abort.js';
import { ChecksumMismatchError, HubError } from './errors.js';
import { ContentHasher, feedFile, hashFile } from './hash.js';
import { hubGet, isTransient, type HubOptions } from './hub.js';
import type { RemoteFile, VerifiedFile } from './manifest.js';
import type { TransferMeter } from './progress.js';
import { safeJoin } from './safe-path.js';

/**
 * Downloads files into a model folder: each into "<name>.part", resumed with an HTTP Range
 * after an interruption, hashed while it streams, and renamed to its final name only once the
 * hash matches. Several files at once; the first failure stops the others.
 */

export interface DownloadItem extends RemoteFile {
  url: string;
  /** A registry pin, which overrides the listing's sha256. */
  pin?: string;
}

export interface DownloadOptions {
  hub: HubOptions;
  repo: string;
  /** The snapshot folder; every file lands strictly inside it. */
  dir: string;
  meter: TransferMeter;
  /** Files downloading at once. Default 4. */
  concurrency?: number;
  /** Resumed attempts per file after a network failure. Default 3. */
  retries?: number;
  /** First pause between attempts, doubled each time (capped at 10 s). Default 1000 ms. */
  retryDelayMs?: number;
  /** An attempt that receives nothing for this long is dropped and resumed. Default 60 s. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called (in completion order) as each file is verified and in place. */
  onVerified?: (file: VerifiedFile) => Promise<void>;
}

/** The checksum a file must have: the pin, else the LFS sha256, else the git blob id. */
export function expectedChecksum(file: { sha256?: string; gitOid?: string; pin?: string }): { kind: 'sha256' | 'git blob id'; value: string } | undefined {
  const sha = file.pin ?? file.sha256;
  if (sha) return { kind: 'sha256', value: sha };
  if (file.gitOid) return { kind: 'git blob id', value: file.gitOid };
  return undefined;
}

function checkDigest(item: DownloadItem, digest: { sha256: string; gitOid: string }): { ok: boolean; expected: string; actual: string } {
  const expected = expectedChecksum(item);
  if (!expected) throw new HubError(`${item.path}: the Hub lists no checksum for it, so it cannot be verified`);
  const actual = expected.kind === 'sha256' ? digest.sha256 : digest.gitOid;
  return { ok: actual === expected.value, expected: `${expected.kind} ${expected.value}`, actual };
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes already in .part files for these items: what a resume will not fetch again. */
export async function resumableBytes(dir: string, items: readonly RemoteFile[]): Promise<number> {
  let total = 0;
  for (const item of items) {
    const size = await sizeOf(`${safeJoin(dir, item.path)}.part`);
    if (size !== undefined && size <= item.size) total += size;
  }
  return total;
}

function contentRangeStart(header: string | null): number | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header ?? '');
  return match ? Number(match[1]) : undefined;
}

/** The redirect's X-Linked-* headers describe the LFS object; a disagreement means a moved repo or a bad listing. */
function checkLinked(item: DownloadItem, linked: Headers | undefined): void {
  const size = linked?.get('x-linked-size');
  if (size && Number(size) !== item.size) {
    throw new HubError(`${item.path}: the Hub now says ${size} bytes, the listing said ${item.size}; pull again`);
  }
  const etag = linked?.get('x-linked-etag')?.replace(/^W\//, '').replace(/"/g, '');
  if (etag && /^[0-9a-f]{64}$/.test(etag) && item.sha256 && etag !== item.sha256) {
    throw new HubError(`${item.path}: the Hub now says sha256 ${etag}, the listing said ${item.sha256}; pull again`);
  }
}

/**
 * reader.read(), rejected as soon as signal aborts. undici does not always settle a pending read
 * when its fetch is aborted (seen when the abort lands after the last byte but before the end of
 * the stream), and a read that never settles would hang the whole pull.
 */
function readOrAbort(reader: ReadableStreamDefaultReader<Uint8Array>, signal: AbortSignal): Promise<ReadableStreamReadResult<Uint8Array>> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason);
      reader.cancel(signal.reason).catch(() => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    reader.read().then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Streams bytes [offset, size) of item into its .part and returns the hasher that has seen the
 * whole file. A server that cannot resume makes the .part go; one that answers a Range with the
 * whole file restarts the hash; a connection silent for idleTimeoutMs is dropped.
 */
async function fetchRest(item: DownloadItem, part: string, offset: number, hasher: ContentHasher, options: DownloadOptions, signal: AbortSignal): Promise<ContentHasher> {
  const { meter } = options;
  const what = `downloading ${item.path}`;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const stalled = linkSignals(signal);
  const attempt = stalled.signal;
  let timer: NodeJS.Timeout | undefined;
  const rearm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => stalled.abort(new HubError(`${what}: no data for ${idleMs / 1000} s`, undefined, { retriable: true })), idleMs);
  };
  try {
    const { response, linked } = await hubGet(options.hub, item.url, {
      what,
      repo: options.repo,
      signal: attempt,
      timeoutMs: idleMs,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    });
    if (response.status === 416 || (response.status === 206 && contentRangeStart(response.headers.get('content-range')) !== offset)) {
      await response.body?.cancel();
      await rm(part, { force: true });
      meter.setFileBytes(item.path, 0);
      throw new HubError(`${what}: the server could not resume at byte ${offset}`, undefined, { retriable: true });
    }
    checkLinked(item, linked);
    if (response.status !== 206 && offset > 0) {
      hasher = new ContentHasher(item.size);
      offset = 0;
      meter.setFileBytes(item.path, 0);
    }
    if (!response.body) throw new HubError(`${what}: empty response`, undefined, { retriable: true });
    const handle = await open(part, offset > 0 ? 'a' : 'w');
    const reader = response.body.getReader();
    let written = offset;
    rearm();
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await readOrAbort(reader, attempt);
        } catch (err) {
          if (attempt.aborted) throw attempt.reason ?? err;
          throw new HubError(`${what}: the connection broke after ${written} of ${item.size} bytes`, undefined, { cause: err, retriable: true });
        }
        if (chunk.done) break;
        rearm();
        const bytes = chunk.value;
        if (written + bytes.length > item.size) {
          await reader.cancel();
          await handle.close();
          await rm(part, { force: true });
          meter.setFileBytes(item.path, 0);
          throw new HubError(`${what}: the server sent more than the ${item.size} bytes the listing announced`);
        }
        await handle.write(bytes);
        hasher.update(bytes);
        written += bytes.length;
        meter.add(item.path, bytes.length);
      }
    } finally {
      await handle.close().catch(() => undefined);
    }
    if (written < item.size) throw new HubError(`${what}: the connection closed after ${written} of ${item.size} bytes`, undefined, { retriable: true });
    return hasher;
  } finally {
    clearTimeout(timer);
    stalled.dispose();
  }
}

/** One attempt: resume (or start) the .part, fetch the rest, verify, rename. */
async function transfer(item: DownloadItem, final: string, options: DownloadOptions, signal: AbortSignal): Promise<VerifiedFile> {
  const part = `${final}.part`;
  let offset = (await sizeOf(part)) ?? 0;
  if (offset > item.size) {
    await rm(part, { force: true });
    offset = 0;
  }
  let hasher = new ContentHasher(item.size);
  if (offset > 0) offset = await feedFile(part, hasher, undefined, signal);
  options.meter.setFileBytes(item.path, offset);
  if (offset < item.size) hasher = await fetchRest(item, part, offset, hasher, options, signal);

  const digest = hasher.digest();
  const check = checkDigest(item, digest);
  if (!check.ok) {
    await rm(part, { force: true });
    options.meter.setFileBytes(item.path, 0);
    throw new ChecksumMismatchError(item.path, check.expected, check.actual);
  }
  await rename(part, final);
  return { path: item.path, size: item.size, sha256: digest.sha256, gitOid: digest.gitOid };
}

async function downloadOne(item: DownloadItem, options: DownloadOptions, signal: AbortSignal): Promise<VerifiedFile> {
  const final = safeJoin(options.dir, item.path);
  await mkdir(dirname(final), { recursive: true });
  // A complete file from a run that died before recording it: keep it if it checks out.
  if ((await sizeOf(final)) === item.size) {
    const digest = await hashFile(final, item.size, undefined, signal);
    if (checkDigest(item, digest).ok) {
      options.meter.setFileBytes(item.path, item.size);
      return { path: item.path, size: item.size, sha256: digest.sha256, gitOid: digest.gitOid };
    }
  }
  const retries = options.retries ?? 3;
  const delay = options.retryDelayMs ?? 1000;
  options.meter.start(item.path);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        return await transfer(item, final, options, signal);
      } catch (err) {
        // An abort's reason may be any error (lock lost, a sibling's failure): never retry it.
        if (signal.aborted) throw signal.reason ?? err;
        if (attempt >= retries || !isTransient(err)) throw err;
        await sleep(Math.min(10_000, delay * 2 ** attempt), undefined, { signal });
      }
    }
  } finally {
    options.meter.finish(item.path);
  }
}

/**
 * All items, at most `concurrency` at a time. The first failure aborts the rest (their .part
 * files stay for a resume) and is what this throws, once every transfer has stopped.
 */
export async function downloadFiles(items: readonly DownloadItem[], options: DownloadOptions): Promise<VerifiedFile[]> {
  // Validate every name before the first byte is written anywhere.
  for (const item of items) safeJoin(options.dir, item.path);
  const inner = linkSignals(options.signal);

  const results: VerifiedFile[] = [];
  let failure: { error: unknown } | undefined;
  let next = 0;
  let recording = Promise.resolve();
  const worker = async (): Promise<void> => {
    while (next < items.length && !inner.signal.aborted) {
      const item = items[next++]!;
      try {
        const file = await downloadOne(item, options, inner.signal);
        results.push(file);
        recording = recording.then(() => options.onVerified?.(file));
        await recording;
      } catch (error) {
        failure ??= { error };
        inner.abort(error);
      }
    }
  };
  try {
    const workers = Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, items.length)) }, worker);
    await Promise.all(workers);
  } finally {
    inner.dispose();
  }
  options.meter.emit(true);
  if (failure) throw failure.error;
  options.signal?.throwIfAborted();
  return results;
}
