import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildEvent } from '../build/build.js';
import { readLock, writeLock, type Lock } from '../build/lock.js';
import { DiffuseError } from '../errors.js';

const BIN = fileURLToPath(new URL('../../../bin/diffuse.js', import.meta.url));

export interface JobsRun {
  manifest: string;
  /** The build's lock (what the shards start from and are joined into). */
  lock: string;
  jobs: number;
  /** Flags every shard takes as they are (--force, --device, --offline, -y). */
  passOn: string[];
  threads: number | undefined;
  onEvent: (e: BuildEvent) => void;
}

/**
 * `diffuse build --jobs N`: the manifest as N shards (--shard i/N), each a child process with its own
 * copy of the lock and its share of the cores, their locks joined into the build's lock as `diffuse
 * lock merge` joins a CI matrix's. One process cannot run two generations at once (onnxruntime-node
 * runs a session on the JavaScript thread), so parallel images are parallel processes, each with its
 * own model in memory. The lock is joined even when a shard fails or is interrupted: what was made
 * stays made.
 */
export async function runJobs(run: JobsRun): Promise<{ interrupted: boolean }> {
  const lockPath = resolve(run.lock);
  const old = await readLock(lockPath);
  const threads = run.threads ?? Math.max(1, Math.floor(availableParallelism() / run.jobs));
  const locks = Array.from({ length: run.jobs }, (_, i) => join(dirname(lockPath), `.diffuse-jobs-${process.pid}-${i}.lock.json`));
  const children: ChildProcess[] = [];
  const forward = (signal: NodeJS.Signals) => () => children.forEach((c) => c.kill(signal));
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const results = await Promise.all(
      locks.map((lock, i) => {
        if (existsSync(lockPath)) copyFileSync(lockPath, lock);
        const argv = [BIN, 'build', run.manifest, '--shard', `${i}/${run.jobs}`, '--lock', lock, '--json', '--threads', String(threads), ...run.passOn];
        const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        // A shard's own lock is a temporary file: its events name the build's lock.
        return shardOutcome(child, (e) => run.onEvent(e.event === 'done' ? { ...e, lock: lockPath } : e));
      }),
    );
    await writeLock(lockPath, await joined(old, locks));
    const failed = results.find((r) => r.code !== 0 && r.code !== 130);
    if (failed) throw new DiffuseError(`a --jobs shard failed: ${failed.error || `exit ${failed.code}`} (what the other shards made is locked)`, failed.code === 2 ? 2 : 1);
    return { interrupted: results.some((r) => r.code === 130) };
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    for (const lock of locks) rmSync(lock, { force: true });
  }
}

/** A shard's events passed on as they come, and how it ended (its error line without the "error:" prefix). */
function shardOutcome(child: ChildProcess, onEvent: (e: BuildEvent) => void): Promise<{ code: number; error: string }> {
  let pending = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) onEvent(JSON.parse(line) as BuildEvent);
  });
  // Bounded: only the last lines say why a shard failed.
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
  return new Promise((resolveOutcome, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const last = stderr.trim().split('\n').filter((l) => l.startsWith('error:')).pop() ?? '';
      resolveOutcome({ code: code ?? (signal === 'SIGINT' ? 130 : 1), error: last.replace(/^error:\s*/, '') });
    });
  });
}

/**
 * The shards' locks joined: each holds its shard's outputs once it has written (a lock with its
 * `shard`), so together they are the unsharded build's lock. A shard that failed before writing left
 * the old lock's copy: its outputs keep their old entries, stale or fresh as they were.
 */
async function joined(old: Lock, locks: readonly string[]): Promise<Lock> {
  const assets: Lock['assets'] = {};
  let complete = true;
  for (const path of locks) {
    const lock = existsSync(path) ? await readLock(path) : undefined;
    if (lock?.shard) Object.assign(assets, lock.assets);
    else complete = false;
  }
  if (!complete) for (const [path, entry] of Object.entries(old.assets)) assets[path] ??= entry;
  return { assets };
}
