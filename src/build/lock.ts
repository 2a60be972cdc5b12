import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { writeFileAtomic } from '../image/write.js';
import { readInputFile } from '../input-file.js';
import { describe, objectAt } from './manifest.js';
import { type Shard, shardText, parseShard } from './shard.js';

/** What made one output, and what it was: enough to tell, without loading a model, whether it is stale. */
export interface LockEntry {
  /** A1111's short model hash (the UNet's weights), as the image records it. */
  model: string;
  /** The diffuse version that wrote it. */
  diffuse: string;
  /** The execution provider that ran it: byte equality holds per provider. */
  provider: string;
  /** SHA-256 of the output's settings, prompt, post-steps and input files' bytes (src/build/params.ts). */
  params: string;
  /** SHA-256 of the file written. */
  sha256: string;
}

export interface Lock {
  /** Set when the lock holds one shard's outputs (diffuse build --shard); `diffuse lock merge` joins them. */
  shard?: Shard;
  assets: Record<string, LockEntry>;
}

export const LOCK_VERSION = 1;
const ENTRY_KEYS = ['model', 'diffuse', 'provider', 'params', 'sha256'] as const;
const MAX_LOCK_BYTES = 64 * 2 ** 20;

/** A lock file; a missing one is an empty lock (the first build) unless `required`. */
export async function readLock(path: string, options: { required?: boolean } = {}): Promise<Lock> {
  if (!options.required && !existsSync(path)) return { assets: {} };
  return parseLock((await readInputFile(path, { label: 'lock', maxBytes: MAX_LOCK_BYTES })).toString('utf8'), path);
}

export function parseLock(text: string, name: string): Lock {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${name}: not a lock file (${(err as Error).message}); delete it to rebuild every asset`, { cause: err });
  }
  const top = objectAt(doc, name, 'a lock file written by diffuse build');
  if (top.lockfileVersion !== LOCK_VERSION) throw new UsageError(`${name}: lockfileVersion ${describe(top.lockfileVersion)}; this diffuse reads version ${LOCK_VERSION}`);
  const assets = objectAt(top.assets, `${name}: assets`, 'a mapping of output paths to entries');
  const out: Lock = { assets: {} };
  if (top.shard !== undefined) out.shard = parseShard(top.shard, `${name}: shard`);
  for (const [path, raw] of Object.entries(assets)) {
    const entry = objectAt(raw, `${name}: assets.${path}`, 'an entry');
    for (const key of ENTRY_KEYS) if (typeof entry[key] !== 'string') throw new UsageError(`${name}: assets.${path}.${key} must be text`);
    out.assets[path] = Object.fromEntries(ENTRY_KEYS.map((k) => [k, entry[k]])) as unknown as LockEntry;
  }
  return out;
}

/**
 * The lock's text: paths sorted, keys in one order, no time or machine path, so that the same
 * outputs give the same bytes (shards joined by `lock merge` equal the unsharded build's lock).
 */
export function lockText(lock: Lock): string {
  const paths = Object.keys(lock.assets).sort();
  const assets = Object.fromEntries(paths.map((p) => [p, Object.fromEntries(ENTRY_KEYS.map((k) => [k, lock.assets[p]![k]]))]));
  return `${JSON.stringify({ lockfileVersion: LOCK_VERSION, ...(lock.shard ? { shard: shardText(lock.shard) } : {}), assets }, null, 2)}\n`;
}

/** Replaced in one rename: an interrupted build leaves the previous lock or the new one. */
export async function writeLock(path: string, lock: Lock): Promise<void> {
  await writeFileAtomic(path, Buffer.from(lockText(lock)), { ifExists: 'overwrite' });
}

/**
 * The shards' locks joined into one: every shard of the same count exactly once, no output in two
 * shards with different entries. The result is the lock the unsharded build writes.
 */
export function mergeLocks(locks: readonly { name: string; lock: Lock }[]): Lock {
  const sharded = locks.filter((l) => l.lock.shard);
  if (sharded.length) {
    const count = sharded[0]!.lock.shard!.count;
    const seen = new Map<number, string>();
    for (const { name, lock } of locks) {
      if (!lock.shard) throw new UsageError(`${name} is not a shard's lock but ${sharded[0]!.name} is; merge the shards of one build`);
      if (lock.shard.count !== count) throw new UsageError(`${name} is shard ${shardText(lock.shard)}, ${sharded[0]!.name} one of ${count}; merge the shards of one build`);
      const twice = seen.get(lock.shard.index);
      if (twice) throw new UsageError(`${name} and ${twice} are both shard ${shardText(lock.shard)}`);
      seen.set(lock.shard.index, name);
    }
    const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
    if (missing.length) throw new UsageError(`shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} missing: merge every shard's lock`);
  }
  const assets: Record<string, LockEntry> = {};
  const from = new Map<string, string>();
  for (const { name, lock } of locks) {
    for (const [path, entry] of Object.entries(lock.assets)) {
      const before = assets[path];
      if (before && JSON.stringify(before) !== JSON.stringify(entry)) throw new UsageError(`${path} is in ${from.get(path)} and ${name} with different entries; rebuild it`);
      assets[path] = entry;
      from.set(path, name);
    }
  }
  return { assets };
}
