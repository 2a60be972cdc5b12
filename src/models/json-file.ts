import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { InputFileError, readInputFile } from '../input-file.js';
import { CacheError } from './errors.js';

/** The cache's own JSON files (manifests, local ids, hashes) are kilobytes. */
const MAX_JSON_BYTES = 64 * 2 ** 20;

/** The parsed file, or undefined when it does not exist; a damaged file is an error, not "absent". */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = (await readInputFile(path, { label: 'cache file', maxBytes: MAX_JSON_BYTES, exitCode: 1 })).toString('utf8');
  } catch (err) {
    if (err instanceof InputFileError && err.code === 'ENOENT') return undefined;
    throw new CacheError(`cannot read ${path}: ${err instanceof InputFileError ? err.reason : (err as Error).message}`, 1, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CacheError(`${path} is not valid JSON (delete it to start over): ${(err as Error).message}`, 1, { cause: err });
  }
}

/** Write to a temporary sibling then rename, so readers never see half a file. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new CacheError(`cannot write ${path}: ${(err as Error).message}`, 1, { cause: err });
  }
}
