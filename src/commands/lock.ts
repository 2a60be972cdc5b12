import type { Command } from 'commander';
import { mergeLocks, readLock, writeLock } from '../build/lock.js';
import { UsageError } from '../errors.js';
import { LOCK_MERGE_OPTIONS } from './build-options.js';

/** `diffuse lock merge A B C -o assets.lock.json`: the locks of a sharded build's jobs joined into the unsharded build's lock. */
export function defineLock(cmd: Command): Command {
  const merge = cmd.command('merge').description("join the locks of diffuse build --shard jobs (every shard once) into one").argument('<locks...>', "each shard's lock file");
  for (const o of LOCK_MERGE_OPTIONS) merge.option(o.flags, o.description);
  merge.action(async (paths: string[], flags: { output?: string }) => {
    const locks = [];
    for (const path of paths) {
      const lock = await readLock(path, { required: true });
      locks.push({ name: path, lock });
    }
    const output = flags.output ?? 'assets.lock.json';
    if (output.trim() === '') throw new UsageError('--output is empty; name the merged lock file');
    const merged = mergeLocks(locks);
    await writeLock(output, merged);
    process.stdout.write(`${output}: ${Object.keys(merged.assets).length} outputs from ${paths.length} lock${paths.length === 1 ? '' : 's'}\n`);
  });
  return cmd;
}
