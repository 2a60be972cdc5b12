import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join, posix, win32 } from 'node:path';

/**
 * Where the cache lives and how it is laid out:
 *
 *   <root>/local.json                     folders and checkpoints registered with `diffuse models add`
 *   <root>/converted/<sha256>-<...>/      checkpoints and VAE files converted to ONNX (src/graphs), each
 *                                         with source.json naming the file it came from
 *   <root>/models/<org>--<name>@<rev>/
 *       manifest.json                     what was listed and what is verified on disk
 *       lock                              held while a process pulls or removes the model
 *       snapshot/<repo files>             the folder handed to the pipeline
 *
 * Bookkeeping sits beside snapshot/, never inside it, so no repo file can collide with it.
 */

/** $DIFFUSE_HOME, else the platform's cache folder: XDG on Linux, Library/Caches on macOS, LOCALAPPDATA on Windows. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = homedir()): string {
  const path = platform === 'win32' ? win32 : posix;
  if (env.DIFFUSE_HOME) return path.resolve(env.DIFFUSE_HOME);
  if (platform === 'win32') return path.join(env.LOCALAPPDATA || path.join(home, 'AppData', 'Local'), 'diffuse', 'cache');
  if (platform === 'darwin') return path.join(home, 'Library', 'Caches', 'diffuse');
  // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(home, '.cache');
  return path.join(xdg, 'diffuse');
}

/** Anything outside [A-Za-z0-9._-] becomes "_", plus a short hash of the original so two names never meet. */
function sanitise(text: string): string {
  const clean = text.replace(/[^A-Za-z0-9._-]/g, '_');
  if (clean === text) return text;
  return `${clean}-${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
}

/** One folder name per repo@revision; repo ids are already validated, revisions may hold "/". */
export function modelKey(repo: string, revision: string): string {
  const [org, name] = repo.split('/');
  return `${sanitise(org!)}--${sanitise(name!)}@${sanitise(revision)}`;
}

export interface ModelPaths {
  key: string;
  base: string;
  snapshot: string;
  manifest: string;
  lock: string;
}

export function modelPaths(root: string, repo: string, revision: string): ModelPaths {
  const key = modelKey(repo, revision);
  const base = join(root, 'models', key);
  return { key, base, snapshot: join(base, 'snapshot'), manifest: join(base, 'manifest.json'), lock: join(base, 'lock') };
}

export function modelsFolder(root: string): string {
  return join(root, 'models');
}

export function convertedFolder(root: string): string {
  return join(root, 'converted');
}

export function localRegistryPath(root: string): string {
  return join(root, 'local.json');
}
