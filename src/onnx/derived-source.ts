import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Which model file a cached derived graph (an edited graph, an optimised graph) was made from, so
 * that deleting the model can delete them too: edited graphs hold hard links to the model's
 * weights, which would otherwise keep gigabytes on disk after `diffuse models rm`.
 */

export const SOURCE_FILE = 'source.json';

export function recordSource(entryDir: string, source: string): void {
  writeFileSync(join(entryDir, SOURCE_FILE), JSON.stringify({ source: realpathSync(source) }));
}

function sourceOf(entryDir: string): string | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(entryDir, SOURCE_FILE), 'utf8')) as { source?: unknown };
    return typeof parsed.source === 'string' ? parsed.source : undefined;
  } catch {
    return undefined;
  }
}

/** Deletes the entries under `cacheDirs` made from `source` (a file that is still there). Returns the deleted folders. */
export function removeDerivedOf(cacheDirs: readonly string[], source: string): string[] {
  if (!existsSync(source)) return [];
  const real = realpathSync(source);
  const deleted: string[] = [];
  for (const dir of cacheDirs.filter((d) => existsSync(d))) {
    for (const name of readdirSync(dir)) {
      const entry = join(dir, name);
      if (sourceOf(entry) !== real) continue;
      rmSync(entry, { recursive: true, force: true });
      deleted.push(entry);
    }
  }
  return deleted;
}

/**
 * Deletes the entries under `cacheDirs` whose source file no longer exists, repeating while
 * anything goes (an int8 graph made from a fused graph goes once the fused one has). Entries
 * without a record (older versions, other tools' files) are left alone. Returns the deleted folders.
 */
export function pruneOrphans(cacheDirs: readonly string[]): string[] {
  const deleted: string[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    for (const dir of cacheDirs.filter((d) => existsSync(d))) {
      for (const name of readdirSync(dir)) {
        const entry = join(dir, name);
        const source = sourceOf(entry);
        if (source === undefined || existsSync(source)) continue;
        rmSync(entry, { recursive: true, force: true });
        deleted.push(entry);
        changed = true;
      }
    }
  }
  return deleted;
}
