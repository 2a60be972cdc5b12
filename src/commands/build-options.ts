/**
 * `diffuse build`'s and `diffuse lock merge`'s flags: one table for commander, --help and the
 * README's table (test/readme.test.ts checks every row is there). What an image looks like is
 * in the manifest; these are the run's choices.
 */
export interface BuildOptionSpec {
  flags: string;
  description: string;
}

export const BUILD_OPTIONS: readonly BuildOptionSpec[] = [
  { flags: '--check', description: 'build nothing: list the stale and missing outputs and exit 1 if there are any (for CI)' },
  { flags: '--force', description: 'make every output again, fresh or not' },
  { flags: '--shard <i/n>', description: 'make only every n-th output from the i-th (0 <= i < n, by path): one job of a CI matrix; its lock holds its outputs, joined by diffuse lock merge' },
  { flags: '--jobs <n>', description: 'make the outputs in n processes side by side (the manifest as n shards, each loading its models, their locks joined); the cores are shared between them unless --threads says otherwise' },
  { flags: '--lock <path>', description: 'the lock file to read and write (default: assets.lock.json beside the manifest)' },
  { flags: '--json', description: 'events as JSON lines on stdout: plan, stale, note, load, built, done' },
  { flags: '--device <name>', description: 'execution provider (recorded in the lock: files are byte-equal only on one provider)' },
  { flags: '--threads <n>', description: 'CPU threads for ONNX Runtime (default: physical cores)' },
  { flags: '--offline', description: 'never touch the network: only models already in the cache' },
  { flags: '-y, --yes', description: 'download registry models that are not installed without asking' },
  { flags: '-q, --quiet', description: 'no progress lines on stderr' },
];

export const LOCK_MERGE_OPTIONS: readonly BuildOptionSpec[] = [{ flags: '-o, --output <path>', description: 'the merged lock (default: assets.lock.json; replaced atomically)' }];
