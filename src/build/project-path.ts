import { existsSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';

/**
 * A path a manifest names, relative to the project (the manifest's folder), as the lock keys it:
 * normalised, with / between parts. Absolute paths, ../ that climbs out, and a folder on the way
 * that is a symbolic link out of the project are refused: a manifest from a pull request must not
 * write (or read) anywhere else.
 */
export function projectPath(projectDir: string, written: string, where: string): string {
  if (written.trim() === '') throw new UsageError(`${where}: the path is empty`);
  if (written.includes('\0')) throw new UsageError(`${where}: the path contains a NUL character`);
  if (isAbsolute(written) || /^[A-Za-z]:/.test(written) || written.startsWith('\\')) {
    throw new UsageError(`${where}: ${written} is absolute; paths in a manifest are relative to its folder`);
  }
  const root = resolve(projectDir);
  const full = resolve(root, written);
  const rel = relative(root, full);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new UsageError(`${where}: ${written} is outside the project (${root}); keep outputs and inputs inside the manifest's folder`);
  }
  // The deepest part that exists decides where the path really leads.
  let existing = full;
  while (!existsSync(existing)) existing = dirname(existing);
  const real = realpathSync(existing);
  const realRoot = realpathSync(root);
  if (real !== realRoot && !real.startsWith(`${realRoot}${sep}`)) {
    throw new UsageError(`${where}: ${written} leads outside the project through a symbolic link (${existing} -> ${real})`);
  }
  return rel.split(sep).join('/');
}
