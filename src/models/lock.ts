import { randomUUID } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ModelLockError } from './errors.js';

/**
 * An exclusive lock file: created with O_EXCL, holding {pid, host, token}. The holder touches it
 * every staleMs/4; a lock is stale when its process is gone (same host) or it has not been
 * touched for staleMs (a crashed or suspended process, or another host on a shared disk).
 *
 * Taking over a stale lock renames it aside first and checks that what was moved is the lock
 * judged stale; if a fresh lock was moved by a race it is linked back (link never overwrites).
 * The holder checks its token at every touch and aborts `lost` if the lock is no longer its own,
 * so even a lost race ends in an error, never two writers. Downloads are verified by hash before
 * they get their final names in any case.
 */

export interface LockHolder {
  pid: number;
  host: string;
  token: string;
  since: string;
}

export interface LockOptions {
  /** How long to wait for another holder, in ms (0: fail at once). Default one hour. */
  waitMs?: number;
  /** Age after which an untouched lock is stale, in ms. Default 60 s. */
  staleMs?: number;
  /** Poll interval while waiting, in ms. Default 250. */
  pollMs?: number;
  signal?: AbortSignal;
  /** Called once when the lock is found held by someone else and we start waiting. */
  onWait?: (holder: LockHolder | undefined) => void;
}

export interface HeldLock {
  /** Aborted (reason: ModelLockError) if another process took the lock from us. */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as LockHolder;
    return typeof h.pid === 'number' && typeof h.token === 'string' && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(path: string): Promise<{ text: string; mtimeMs: number } | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mtimeMs: info.mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function isStale(text: string, mtimeMs: number, staleMs: number): boolean {
  const holder = parseHolder(text);
  if (holder && holder.host === hostname() && !pidAlive(holder.pid)) return true;
  return Date.now() - mtimeMs > staleMs;
}

async function takeOver(path: string, staleText: string): Promise<void> {
  const aside = `${path}.stale-${process.pid}-${randomUUID()}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readFile(aside, 'utf8').catch(() => staleText);
  if (moved !== staleText) {
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

async function tryCreate(path: string, holder: LockHolder): Promise<boolean> {
  try {
    const handle = await open(path, 'wx');
    try {
      await handle.writeFile(JSON.stringify(holder));
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

function hold(path: string, holder: LockHolder, staleMs: number): HeldLock {
  const lost = new AbortController();
  let released = false;
  const touch = async (): Promise<void> => {
    const current = await readLock(path).catch(() => undefined);
    if (released) return;
    if (!current || parseHolder(current.text)?.token !== holder.token) {
      clearInterval(timer);
      lost.abort(new ModelLockError(`another process took the lock ${path} while this one held it; run the command again`));
      return;
    }
    const now = new Date();
    await utimes(path, now, now).catch(() => undefined);
  };
  const timer = setInterval(() => void touch(), Math.max(10, Math.floor(staleMs / 4)));
  timer.unref();
  return {
    lost: lost.signal,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      const current = await readLock(path).catch(() => undefined);
      if (current && parseHolder(current.text)?.token === holder.token) await unlink(path).catch(() => undefined);
    },
  };
}

export async function acquireLock(path: string, options: LockOptions = {}): Promise<HeldLock> {
  const waitMs = options.waitMs ?? 60 * 60 * 1000;
  const staleMs = options.staleMs ?? 60 * 1000;
  const pollMs = options.pollMs ?? 250;
  const holder: LockHolder = { pid: process.pid, host: hostname(), token: randomUUID(), since: new Date().toISOString() };
  const deadline = Date.now() + waitMs;
  let waited = false;
  // Bounded: a pass returns, throws, or sleeps toward the deadline; races (lock vanished, stale
  // lock taken over) retry without sleeping at most 100 times in all.
  let quickRetries = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    if (await tryCreate(path, holder)) return hold(path, holder, staleMs);
    const current = await readLock(path);
    if (quickRetries < 100 && (!current || isStale(current.text, current.mtimeMs, staleMs))) {
      quickRetries++;
      if (current) await takeOver(path, current.text);
      continue;
    }
    const other = current ? parseHolder(current.text) : undefined;
    if (!waited) {
      waited = true;
      options.onWait?.(other);
    }
    if (Date.now() >= deadline) {
      const who = other ? `process ${other.pid} on ${other.host}` : 'another process';
      throw new ModelLockError(`${who} is using this model (lock ${path}); wait for it to finish, or delete the lock file if that process is gone`);
    }
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())), undefined, { signal: options.signal });
  }
}
