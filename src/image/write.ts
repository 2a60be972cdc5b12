// Crash-safe, race-safe file creation: readers never see a half-written image, and an existing file is
// never replaced unless the caller asked for it.
//
// The bytes go to a temporary file in the target's directory, are fsynced, then published:
//   'overwrite'      rename(tmp, path): atomic replace.
//   'error'/'suffix' link(tmp, path): fails with EEXIST instead of clobbering, even if another process
//                    creates `path` between any check and the write; then the temp name is unlinked.
// On file systems without hard links (FAT/exFAT, some network mounts) publishing falls back to an exclusive
// copy (still never clobbers, but a reader may see the file while it is being copied).
// The temporary file is removed on every failure.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { OutputExistsError, OutputNotWritableError } from './errors.js';

/** What to do when the target exists: fail, replace it, or take the first free name-1.png, name-2.png, ... */
export type ExistingFilePolicy = 'error' | 'overwrite' | 'suffix';

export interface WriteOptions {
  /** Default 'error'. */
  ifExists?: ExistingFilePolicy;
  /** Create missing parent directories. Default true. */
  createDirs?: boolean;
}

const MAX_SUFFIX = 9999;
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** name.png -> name-<n>.png */
export function suffixedPath(path: string, n: number): string {
  const ext = extname(path);
  return join(dirname(path), `${basename(path, ext)}-${n}${ext}`);
}

async function publishExclusive(tmp: string, target: string): Promise<void> {
  try {
    await link(tmp, target);
  } catch (err) {
    if (!NO_HARD_LINKS.has(errCode(err) ?? '')) throw err;
    await copyFile(tmp, target, constants.COPYFILE_EXCL);
  }
}

// Makes the new directory entry durable. Directories cannot be opened for fsync on Windows: best effort.
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // durability of the entry only; the data itself is already synced
  }
}

/**
 * Write `data` to `path` atomically. Returns the path actually written (differs from `path` only with
 * ifExists 'suffix'). Throws OutputExistsError or OutputNotWritableError.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, options: WriteOptions = {}): Promise<string> {
  const { ifExists = 'error', createDirs = true } = options;
  const dir = dirname(path);
  const tmp = join(dir, `.diffuse-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  let tmpExists = false;
  try {
    if (createDirs) await mkdir(dir, { recursive: true });
    const handle = await open(tmp, 'wx');
    tmpExists = true;
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (ifExists === 'overwrite') {
      await rename(tmp, path);
      tmpExists = false;
      await syncDirectory(dir);
      return path;
    }
    for (let n = 0; n <= MAX_SUFFIX; n++) {
      const target = n === 0 ? path : suffixedPath(path, n);
      try {
        await publishExclusive(tmp, target);
        await syncDirectory(dir);
        return target;
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw err;
        if (ifExists === 'error') throw new OutputExistsError(path);
      }
    }
    throw new OutputExistsError(suffixedPath(path, MAX_SUFFIX));
  } catch (err) {
    if (err instanceof OutputExistsError) throw err;
    throw new OutputNotWritableError(path, err);
  } finally {
    if (tmpExists) await unlink(tmp).catch(() => undefined);
  }
}
