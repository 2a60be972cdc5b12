import { cacheRoot } from './cache-layout.js';
import { LocalModelError, ModelPathError, UnknownModelError } from './errors.js';
import { readLocalModels } from './local.js';
import type { RemoteFile } from './manifest.js';
import { formatModelRef, type ModelRef } from './ref.js';
import { componentsFor, findEntry, findFileSet, loadRegistry, PYTORCH_INCLUDE, registryIds, type FileSetEntry, type Registry, type RegistryEntry, type Task } from './registry.js';
import { selectExact, selectFiles } from './select.js';

/** What a model reference points at in the cache, and which of its files a task needs. */

export interface CacheOptions {
  /** Cache root; default cacheRoot() ($DIFFUSE_HOME or the platform cache folder). */
  home?: string;
  /** Default: models.json. */
  registry?: Registry;
}

export interface FileChoice {
  /** Which subcommand the files are for. Default txt2img. */
  task?: Task;
  /** Also fetch safety_checker/ and feature_extractor/. */
  safetyChecker?: boolean;
  /** Every file the repo lists (debugging a layout). */
  all?: boolean;
  /** Exactly these repo paths instead of a task's components (a registry VAE's files). */
  files?: readonly string[];
  /** The PyTorch layout's folders and weights (a registry entry of format pytorch). */
  pytorch?: boolean;
}

/** A repo@revision to pull, and the registry entry it came from, if any. */
export interface PullTarget {
  repo: string;
  revision: string;
  entry?: RegistryEntry;
  /** A registry VAE or upscaler: its exact files are what a pull fetches. */
  fileSet?: FileSetEntry;
  /** The reference as the user would type it, for messages and the `models pull` hint. */
  label: string;
}

/** The sha256 pins of the target's registry entry (model, VAE or upscaler). */
export function targetPins(target: PullTarget): Record<string, string> | undefined {
  return (target.entry ?? target.fileSet)?.sha256;
}

/** What a pull or a cache lookup of the target selects: a VAE's or upscaler's files, else the task's components (a PyTorch entry's own). */
export function targetChoice<T extends FileChoice>(target: PullTarget, choice: T): T {
  if (target.fileSet) return { ...choice, files: target.fileSet.files };
  return target.entry?.format === 'pytorch' ? { ...choice, pytorch: true } : choice;
}

/** Registry ids and hf: refs name something to pull; paths and `models add` folders do not. */
export async function pullTargetFor(ref: ModelRef, options: CacheOptions = {}): Promise<PullTarget> {
  const registry = options.registry ?? loadRegistry();
  if (ref.kind === 'hf') return { repo: ref.repo, revision: ref.revision, label: formatModelRef(ref) };
  if (ref.kind === 'path') throw new ModelPathError(`${ref.path} is a folder path; only registry ids and hf:org/repo references can be pulled`);
  const entry = findEntry(registry, ref.id);
  if (entry) return { repo: entry.repo, revision: entry.revision, entry, label: entry.id };
  const fileSet = findFileSet(registry, ref.id);
  if (fileSet) return { repo: fileSet.repo, revision: fileSet.revision, fileSet, label: fileSet.id };
  const local = await readLocalModels(options.home ?? cacheRoot());
  if (local[ref.id]) throw new LocalModelError(`"${ref.id}" is a local folder (${local[ref.id]!.path}); there is nothing to pull`);
  throw new UnknownModelError(ref.id, [...registryIds(registry), ...Object.keys(local)]);
}

/** The files `choice` needs from a listing (registry include patterns, task components). */
export function wantedFiles(listing: readonly RemoteFile[], registry: Registry, choice: FileChoice, what: string): RemoteFile[] {
  if (choice.files && !choice.all) return selectExact(listing, choice.files, what);
  const components = componentsFor(registry, { task: choice.task ?? 'txt2img', safetyChecker: choice.safetyChecker, pytorch: choice.pytorch });
  const include = choice.pytorch ? PYTORCH_INCLUDE : registry.include;
  return selectFiles(listing, { components, optional: registry.optionalComponents, include, all: choice.all }, what);
}
