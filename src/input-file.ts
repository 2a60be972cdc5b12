/**
 * Reading a file a user (or a downloaded model) hands us, with its size known before the first byte
 * is read: regular files only (a FIFO, /dev/zero, a socket or a directory is refused without
 * blocking: the file is opened non-blocking), at most `maxBytes`, and no more than that even if the
 * file grows while it is read. Every room reads its inputs through here; the caller says which error
 * a failure becomes (a file the user named: usage, exit 2; a part of a model: runtime, exit 1).
 */
import { constants, fstatSync, openSync, readSync, closeSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { DiffuseError } from './errors.js';

export interface InputFileOptions {
  /** The largest file read; a bigger one is refused before reading. */
  maxBytes: number;
  /** How messages name the file: a flag ('--init-image'), or a description ('model config'). */
  label: string;
  /** 2 when the user named the file (the default), 1 when it is part of something else (a model folder). */
  exitCode?: 1 | 2;
  /** What to do about a file over the limit, appended to that message. */
  hint?: string;
}

/** A file that cannot be read as an input; `reason` says why without the path. */
export class InputFileError extends DiffuseError {
  constructor(
    readonly path: string,
    readonly reason: string,
    options: InputFileOptions,
    readonly code?: string,
    cause?: unknown,
  ) {
    super(`${options.label}: cannot read ${path}: ${reason}`, options.exitCode ?? 2, cause === undefined ? undefined : { cause });
  }
}

// O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one.
const FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

export function formatSize(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(0)} KB`;
  return `${bytes} bytes`;
}

function kindOf(stats: Stats): string | undefined {
  if (stats.isFile()) return undefined;
  if (stats.isDirectory()) return 'it is a folder, not a file';
  if (stats.isFIFO()) return 'it is a named pipe (FIFO), not a regular file';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'it is a device, not a regular file';
  if (stats.isSocket()) return 'it is a socket, not a regular file';
  return 'it is not a regular file';
}

function openFailure(path: string, err: unknown, options: InputFileOptions): InputFileError {
  const code = (err as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOENT' ? 'no such file'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EISDIR' ? 'it is a folder, not a file'
    : code === 'ENOTDIR' ? 'a part of the path is not a folder'
    : code === 'ELOOP' ? 'too many symbolic links'
    : code === 'ENAMETOOLONG' ? 'the path is too long'
    : ((err as Error).message ?? String(err));
  return new InputFileError(path, reason, options, code, err);
}

function checkStats(path: string, stats: Stats, options: InputFileOptions): number {
  const kind = kindOf(stats);
  if (kind) throw new InputFileError(path, kind, options, 'ENOTREG');
  if (stats.size > options.maxBytes) {
    const hint = options.hint ? `; ${options.hint}` : '';
    throw new InputFileError(path, `it is ${formatSize(stats.size)}; at most ${formatSize(options.maxBytes)} is read${hint}`, options, 'EFBIG');
  }
  return stats.size;
}

/** The whole file, after the checks above. */
export async function readInputFile(path: string, options: InputFileOptions): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, FLAGS);
  } catch (err) {
    throw openFailure(path, err, options);
  }
  try {
    const size = checkStats(path, await handle.stat(), options);
    // One byte more than announced tells a file that grew since the stat from one that did not.
    const bytes = Buffer.alloc(size + 1);
    let at = 0;
    for (;;) {
      const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at);
      if (bytesRead === 0) break;
      at += bytesRead;
      if (at > size) throw new InputFileError(path, 'it changed while it was read', options, 'ECHANGED');
    }
    return bytes.subarray(0, at);
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw openFailure(path, err, options);
  } finally {
    await handle.close();
  }
}

/** The same, synchronously (model configs read while a model folder is examined). */
export function readInputFileSync(path: string, options: InputFileOptions): Buffer {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (err) {
    throw openFailure(path, err, options);
  }
  try {
    const size = checkStats(path, fstatSync(fd), options);
    const bytes = Buffer.alloc(size + 1);
    let at = 0;
    for (;;) {
      const n = readSync(fd, bytes, at, bytes.length - at, at);
      if (n === 0) break;
      at += n;
      if (at > size) throw new InputFileError(path, 'it changed while it was read', options, 'ECHANGED');
    }
    return bytes.subarray(0, at);
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw openFailure(path, err, options);
  } finally {
    closeSync(fd);
  }
}

/**
 * A file read piece by piece (a PNG's chunks, a checkpoint's tensors) from its own descriptor, after
 * the same checks; `size` is what the stat said. Close it when done.
 */
export interface InputFileHandle {
  size: number;
  /** Exactly `length` bytes at `position`, or fewer only where the file ends. */
  read(position: number, length: number): Buffer;
  close(): void;
}

export function openInputFile(path: string, options: InputFileOptions): InputFileHandle {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (err) {
    throw openFailure(path, err, options);
  }
  try {
    const size = checkStats(path, fstatSync(fd), options);
    return {
      size,
      read(position, length) {
        const bytes = Buffer.alloc(Math.max(0, Math.min(length, size - position)));
        let at = 0;
        while (at < bytes.length) {
          const n = readSync(fd, bytes, at, bytes.length - at, position + at);
          if (n === 0) break;
          at += n;
        }
        return bytes.subarray(0, at);
      },
      close: () => closeSync(fd),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
