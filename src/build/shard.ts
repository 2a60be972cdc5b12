import { UsageError } from '../errors.js';

/** One part of a build split for a CI matrix: the outputs whose position (sorted by path) modulo count is index. */
export interface Shard {
  index: number;
  count: number;
}

/** "i/n" with 0 <= i < n (a CI matrix index counts from 0; GitLab's CI_NODE_INDEX from 1: subtract one). */
export function parseShard(raw: unknown, label: string): Shard {
  const m = /^(\d{1,6})\/(\d{1,6})$/.exec(String(raw).trim());
  const index = m ? Number(m[1]) : Number.NaN;
  const count = m ? Number(m[2]) : Number.NaN;
  if (!m || count < 1 || index >= count) throw new UsageError(`${label} must be i/n with 0 <= i < n, e.g. 0/3 (got '${String(raw)}')`);
  return { index, count };
}

export const shardText = (s: Shard): string => `${s.index}/${s.count}`;

/**
 * The shard's share of a sorted list: every n-th from i. It depends only on the paths, so every
 * machine of a CI matrix splits the same manifest the same way without talking to the others.
 */
export function inShard<T>(sorted: readonly T[], shard: Shard | undefined): T[] {
  return shard ? sorted.filter((_, i) => i % shard.count === shard.index) : [...sorted];
}
