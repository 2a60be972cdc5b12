import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { localRegistryPath } from './cache-layout.js';
import { CacheError, LocalModelError } from './errors.js';
import { readJsonFile, writeJsonAtomic } from './json-file.js';
import { validateId } from './ref.js';
import { registryIds, type Registry } from './registry.js';

/**
 * Folders and single-file checkpoints the user registered under a name with `diffuse models add
 * <path> --id <name>`, kept in <cache root>/local.json. diffuse never writes into or deletes
 * them; a checkpoint is converted on first use into the cache (src/graphs), and that conversion
 * is what `models rm` deletes.
 */
export interface LocalModel {
  path: string;
  added: string;
  /** A single-file checkpoint (or diffusers PyTorch folder) to convert first, not an ONNX folder. */
  checkpoint?: true;
}

interface LocalFile {
  version: 1;
  models: Record<string, LocalModel>;
}

export async function readLocalModels(root: string): Promise<Record<string, LocalModel>> {
  const path = localRegistryPath(root);
  const raw = (await readJsonFile(path)) as LocalFile | undefined;
  if (raw === undefined) return {};
  const ok =
    typeof raw === 'object' && raw !== null && raw.version === 1 && typeof raw.models === 'object' && raw.models !== null &&
    Object.entries(raw.models).every(([id, m]) => validateId(id) === undefined && typeof m?.path === 'string' && typeof m?.added === 'string' && (m.checkpoint === undefined || m.checkpoint === true));
  if (!ok) throw new CacheError(`${path} is damaged; fix or delete it (it only lists folders added with \`diffuse models add\`)`);
  return raw.models;
}

async function writeLocalModels(root: string, models: Record<string, LocalModel>): Promise<void> {
  await mkdir(root, { recursive: true });
  await writeJsonAtomic(localRegistryPath(root), { version: 1, models } satisfies LocalFile);
}

export interface AddOptions {
  /** Replace an existing local id of the same name. */
  force?: boolean;
  /**
   * `path` is a checkpoint to convert on first use, already checked to be one by the caller (the
   * models room does not read weights).
   */
  checkpoint?: boolean;
}

/** Registers `path` (a diffusers ONNX folder, or a checkpoint) as `id`; ids never shadow registry entries. */
export async function addLocalModel(root: string, registry: Registry, dir: string, id: string, options: AddOptions = {}): Promise<LocalModel> {
  const problem = validateId(id);
  if (problem) throw new LocalModelError(`model id "${id}" ${problem}`);
  if (registryIds(registry).includes(id)) throw new LocalModelError(`"${id}" is a registry id; choose another name`);
  const path = resolve(dir);
  if (!existsSync(path)) throw new LocalModelError(`${path} does not exist`);
  if (!options.checkpoint) {
    if (!statSync(path).isDirectory()) throw new LocalModelError(`${path} is not a folder`);
    if (!existsSync(join(path, 'model_index.json'))) throw new LocalModelError(`${path} has no model_index.json: not a diffusers model folder`);
  }
  const models = await readLocalModels(root);
  if (models[id] && !options.force) throw new LocalModelError(`"${id}" is already registered for ${models[id]!.path} (use --force to replace it)`);
  const model: LocalModel = { path, added: new Date().toISOString(), ...(options.checkpoint ? { checkpoint: true as const } : {}) };
  await writeLocalModels(root, { ...models, [id]: model });
  return model;
}

/** Forgets a local id (the folder or file itself is left alone). Returns what it pointed at. */
export async function removeLocalModel(root: string, id: string): Promise<LocalModel | undefined> {
  const models = await readLocalModels(root);
  const model = models[id];
  if (!model) return undefined;
  const { [id]: _removed, ...rest } = models;
  await writeLocalModels(root, rest);
  return model;
}
