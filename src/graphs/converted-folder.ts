import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DiffuseError, describeCause } from '../errors.js';
import { ConversionError } from './errors.js';
import type { GraphBuilder } from './onnx-builder.js';

/**
 * The part every weight-file conversion into the cache shares (a --vae file, a --control file):
 * the folder is assembled beside its final name and renamed into place, so a failure or a kill
 * leaves nothing a later run would take for finished; a folder already there and current is used.
 */

export const DATA_FILE = 'model.onnx_data';

/** `fill` writes the folder's files into the directory it is given; it becomes `outDir` only when complete. */
export async function assembleFolder(outDir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${outDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fill(tmp);
    await rename(tmp, outDir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A graph written as `<dir>/<part>/model.onnx` (+ its data file); a disk failure says where it wrote. */
export async function writeGraph(graph: GraphBuilder, dir: string, part: string, what: string): Promise<void> {
  try {
    await graph.write(join(dir, part), DATA_FILE);
  } catch (err) {
    if (err instanceof DiffuseError) throw err;
    throw new ConversionError(`cannot write the converted ${what} beside ${dirname(dir)}: ${describeCause(err)} (free some disk space or choose another cache)`, { cause: err });
  }
}

/** `dir` when `current(dir)`; otherwise converted there now (another process finishing the same conversion first is as good). */
export async function cachedConversion(dir: string, current: (dir: string) => boolean, convert: (dir: string) => Promise<unknown>): Promise<string> {
  if (current(dir)) return dir;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  try {
    await convert(dir);
  } catch (err) {
    if (current(dir)) return dir;
    throw err;
  }
  return dir;
}
