import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { localRegistryPath } from './cache-layout.js';
import { CacheError, LocalModelError } from './errors.js';
import { readJsonFile, writeJsonAtomic } from './json-file.js';
import { validateId } from './ref.js';
import type { Registry } from './registry.js';

/**
 * Folders the user registered under a name with `diffuse models add <dir> --id <name>`, kept in
 * <cache root>/local.json. diffuse never writes into or deletes these folders.
 */
export interface LocalModel {
  path: string;
  added: string;
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
    Object.entries(raw.models).every(([id, m]) => validateId(id) === undefined && typeof m?.path === 'string' && typeof m?.added === 'string');
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
}

/** Registers `dir` (a diffusers ONNX folder) as `id`; ids never shadow registry entries. */
export async function addLocalModel(root: string, registry: Registry, dir: string, id: string, options: AddOptions = {}): Promise<LocalModel> {
  const problem = validateId(id);
  if (problem) throw new LocalModelError(`model id "${id}" ${problem}`);
  if (registry.models.some((m) => m.id === id)) throw new LocalModelError(`"${id}" is a registry model id; choose another name`);
  const path = resolve(dir);
  if (!existsSync(path) || !statSync(path).isDirectory()) throw new LocalModelError(`${path} is not a folder`);
  if (!existsSync(join(path, 'model_index.json'))) throw new LocalModelError(`${path} has no model_index.json: not a diffusers model folder`);
  const models = await readLocalModels(root);
  if (models[id] && !options.force) throw new LocalModelError(`"${id}" is already registered for ${models[id]!.path} (use --force to replace it)`);
  const model: LocalModel = { path, added: new Date().toISOString() };
  await writeLocalModels(root, { ...models, [id]: model });
  return model;
}

/** Forgets a local id (the folder itself is left alone). Returns the folder it pointed at. */
export async function removeLocalModel(root: string, id: string): Promise<string | undefined> {
  const models = await readLocalModels(root);
  const model = models[id];
  if (!model) return undefined;
  const { [id]: _removed, ...rest } = models;
  await writeLocalModels(root, rest);
  return model.path;
}
