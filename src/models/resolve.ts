import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { findCachedSnapshot } from './cache.js';
import { cacheRoot } from './cache-layout.js';
import { ModelNotCachedError, ModelPathError, UnknownModelError } from './errors.js';
import { readLocalModels } from './local.js';
import { pullRepo, type PullOptions } from './pull.js';
import { parseModelRef, validateRepoId, type ModelRef } from './ref.js';
import { findEntry, findFileSet, loadRegistry, registryIds, type RegistryEntry } from './registry.js';
import { pullTargetFor, targetChoice, targetPins, type FileChoice } from './target.js';

export interface ResolveOptions extends PullOptions {
  /** Never touch the network; fail with the pull command when the model is not cached. */
  offline?: boolean;
  /** Download what is missing (default false: fail with the pull command instead). */
  allowDownload?: boolean;
}

export interface ResolvedModel {
  /** A diffusers ONNX folder for the pipeline; with `checkpoint`, the file (or PyTorch folder) to convert into one. */
  dir: string;
  /** A `models add` checkpoint or a PyTorch registry entry: src/graphs converts it (once, cached) before the pipeline loads it. */
  checkpoint?: true;
  entry?: RegistryEntry;
  ref: ModelRef;
  source: 'path' | 'local' | 'cache' | 'download';
}

/** The command that fetches what `choice` needs; the one place CLI flag names appear in src/models. */
export function pullCommand(label: string, choice: FileChoice = {}): string {
  const task = choice.task && choice.task !== 'txt2img' ? ` --task ${choice.task}` : '';
  return `diffuse models pull ${label}${task}${choice.safetyChecker ? ' --safety-checker' : ''}`;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

function resolvePath(ref: Extract<ModelRef, { kind: 'path' }>): ResolvedModel {
  const dir = resolve(expandHome(ref.path));
  if (!existsSync(dir)) {
    const hint = validateRepoId(ref.path) === undefined ? ` (for the Hub repo, write hf:${ref.path})` : '';
    throw new ModelPathError(`model folder not found: ${dir}${hint}`);
  }
  if (!statSync(dir).isDirectory()) throw new ModelPathError(`${dir} is not a folder`);
  return { dir, ref, source: 'path' };
}

/**
 * Turns `--model` into a folder: a path as is; a registry id or hf: ref from the cache, pulled
 * first when allowed; a `models add` id to its folder. Nothing here touches the network unless
 * the model is missing, allowDownload is set and offline is not.
 */
export async function resolveModel(ref: string | ModelRef, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const parsed = typeof ref === 'string' ? parseModelRef(ref) : ref;
  if (parsed.kind === 'path') return resolvePath(parsed);

  const root = options.home ?? cacheRoot();
  const registry = options.registry ?? loadRegistry();
  if (parsed.kind === 'id' && !findEntry(registry, parsed.id) && !findFileSet(registry, parsed.id)) {
    const local = await readLocalModels(root);
    const model = local[parsed.id];
    if (!model) throw new UnknownModelError(parsed.id, [...registryIds(registry), ...Object.keys(local)]);
    if (!existsSync(model.path)) {
      throw new ModelPathError(`"${parsed.id}" points at ${model.path}, which no longer exists (\`diffuse models rm ${parsed.id}\` forgets it)`);
    }
    return { dir: model.path, ref: parsed, source: 'local', ...(model.checkpoint ? { checkpoint: true as const } : {}) };
  }
  const target = await pullTargetFor(parsed, { home: root, registry });

  const found = await findCachedSnapshot(root, target.repo, target.revision, registry, targetChoice(target, options), targetPins(target));
  // A PyTorch entry's snapshot is converted (once, cached) before the pipeline loads it, as a `models add` checkpoint is.
  const withEntry = (r: ResolvedModel): ResolvedModel => (target.entry ? { ...r, entry: target.entry, ...(target.entry.format === 'pytorch' ? { checkpoint: true as const } : {}) } : r);
  if (found) return withEntry({ dir: found, ref: parsed, source: 'cache' });
  if (options.offline || !options.allowDownload) {
    throw new ModelNotCachedError(target.label, pullCommand(target.label, options), options.offline === true);
  }
  const pulled = await pullRepo(target, { ...options, home: root, registry });
  return withEntry({ dir: pulled.dir, ref: parsed, source: 'download' });
}
