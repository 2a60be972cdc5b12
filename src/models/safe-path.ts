import { relative, resolve, sep, isAbsolute } from 'node:path';
import { UnsafePathError } from './errors.js';

// Names Windows maps to devices whatever the extension; refused everywhere so a cache copied
// between machines stays usable.
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why a file name from the server must not be written, or undefined when it is a plain
 * forward-slash path inside the repo. Every name the Hub (or anyone posing as it) lists goes
 * through here before it can become a filesystem path.
 */
export function unsafeRepoPathReason(path: string): string | undefined {
  if (path.length === 0) return 'empty name';
  if (path.length > 1024) return 'name longer than 1024 characters';
  if (CONTROL.test(path)) return 'control characters';
  if (path.includes('\\')) return 'backslash';
  if (path.includes(':')) return 'colon (drive letter or alternate data stream)';
  if (path.startsWith('/')) return 'absolute path';
  if (path.endsWith('.part')) return 'name ending in .part (reserved for partial downloads)';
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return `"${segment}" path segment`;
    if (segment.endsWith('.') || segment.endsWith(' ')) return 'segment ending in a dot or space';
    if (WINDOWS_DEVICE.test(segment)) return 'Windows device name';
  }
  return undefined;
}

/** root joined with a repo path, after proving the result stays strictly inside root. */
export function safeJoin(root: string, repoPath: string): string {
  const reason = unsafeRepoPathReason(repoPath);
  if (reason) throw new UnsafePathError(repoPath, reason);
  const base = resolve(root);
  const full = resolve(base, ...repoPath.split('/'));
  const rel = relative(base, full);
  // Belt and braces: the checks above already exclude every way out, this catches what they miss.
  if (rel === '' || rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel) || !full.startsWith(base + sep)) {
    throw new UnsafePathError(repoPath, 'resolves outside the model folder');
  }
  return full;
}
