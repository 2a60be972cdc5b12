import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DiffuseError } from '../errors.js';
import { encodeImage } from '../image/encode-image.js';
import { metadataInfotext } from '../image/infotext.js';
import { fitToSize } from '../image/resize-modes.js';
import { writeFileAtomic } from '../image/write.js';
import type { RegistryEntry } from '../models/index.js';
import type { Device } from '../onnx/session.js';
import { generate } from '../pipeline/generate.js';
import { loadModel } from '../pipeline/load.js';
import { modelHash, weightsHash } from '../pipeline/model-hash.js';
import { readModelFiles } from '../pipeline/model-files.js';
import { resolveSettings } from '../settings/config.js';
import { loadGroups, prepareGeneration, withPromptNetworks, type PreparedGeneration } from '../settings/generation-plan.js';
import type { GeneratingCommand } from '../settings/options.js';
import { VERSION } from '../version.js';
import { INPUT_KEYS, manifestAssets, type Asset } from './assets.js';
import { lockText, readLock, writeLock, type Lock, type LockEntry } from './lock.js';
import { readManifest } from './manifest.js';
import { paramsHash } from './params.js';
import { inShard, type Shard } from './shard.js';

export interface BuildOptions {
  manifest: string;
  /** Default: assets.lock.json beside the manifest. */
  lock?: string;
  /** Report stale and missing outputs, build nothing. */
  check?: boolean;
  /** Rebuild every output, fresh or not. */
  force?: boolean;
  shard?: Shard;
  device: Device;
  threads?: number;
  offline: boolean;
}

export interface ChosenModelDir {
  dir: string;
  entry?: RegistryEntry;
}

/** What the command layer lends a build: how a model reference becomes a folder (the registry, downloads, questions). */
export interface BuildEnv {
  chooseModel(ref: string, command: GeneratingCommand, offline: boolean): Promise<ChosenModelDir>;
  /** A manifest's vae: to a folder of VAE graphs (a registry VAE pulled, a VAE file converted), for a model whose latents have this scaling factor. */
  chooseVae(ref: string, scalingFactor: number, offline: boolean): Promise<{ dir: string }>;
  /** loadModel by default; a test counts loads through it. */
  load?: typeof loadModel;
  onEvent?(event: BuildEvent): void;
  /** Aborted (Ctrl-C): the image being made is not written, the lock holds every output written so far. */
  signal?: AbortSignal;
}

export type BuildEvent =
  | { event: 'plan'; assets: number; stale: number; shard?: string }
  | { event: 'stale'; path: string; reason: string }
  | { event: 'note'; path: string; message: string }
  | { event: 'load'; model: string; assets: number }
  | { event: 'built'; path: string; sha256: string; seconds: number }
  | { event: 'done'; built: number; fresh: number; lock: string };

export interface BuildResult {
  assets: number;
  stale: { path: string; reason: string }[];
  built: string[];
  interrupted: boolean;
  lock: string;
}

interface PlannedModel extends ChosenModelDir {
  hash: string;
}

interface Planned {
  asset: Asset;
  params: string;
  model: PlannedModel | undefined;
  /** The refiner and the VAE an output names, beside its model. */
  refiner?: PlannedModel;
  vae?: { dir: string };
  /** Why it must be made again; undefined when fresh. */
  reason: string | undefined;
}

/**
 * `diffuse build`: the manifest's outputs (one shard of them with --shard) checked against the
 * lock, and those whose inputs changed made again through the one pipeline, grouped so each model
 * loads once. Each file is written atomically and the lock after it, so an interrupted build
 * resumes where it stopped.
 */
export async function runBuild(options: BuildOptions, env: BuildEnv): Promise<BuildResult> {
  const manifestPath = resolve(options.manifest);
  const projectDir = dirname(manifestPath);
  const lockPath = resolve(options.lock ?? join(projectDir, 'assets.lock.json'));
  const assets = inShard(manifestAssets(await readManifest(manifestPath), projectDir), options.shard);
  const old = await readLock(lockPath);
  const emit = env.onEvent ?? (() => {});
  const planned = await plan(assets, old, projectDir, options, env, emit);
  const stale = planned.filter((p) => p.reason !== undefined).map((p) => ({ path: p.asset.path, reason: p.reason! }));
  emit({ event: 'plan', assets: assets.length, stale: stale.length, ...(options.shard ? { shard: `${options.shard.index}/${options.shard.count}` } : {}) });
  for (const s of stale) emit({ event: 'stale', ...s });
  const result: BuildResult = { assets: assets.length, stale, built: [], interrupted: false, lock: lockPath };
  if (options.check) return result;

  // The lock being written: this build's outputs only (a shard's lock holds its shard's).
  const next: Lock = { ...(options.shard ? { shard: options.shard } : {}), assets: {} };
  for (const p of planned) if (old.assets[p.asset.path]) next.assets[p.asset.path] = old.assets[p.asset.path]!;
  const jobs = await Promise.all(planned.filter((p) => p.reason !== undefined).map((p) => jobOf(p, projectDir, options)));
  const load = env.load ?? loadModel;
  for (const group of loadGroups(jobs)) {
    if (env.signal?.aborted) break;
    emit({ event: 'load', model: String(group.jobs[0]!.planned.asset.values.model ?? 'the default model'), assets: group.jobs.length });
    const bundle = await load(group.modelDir, { ...group.load, parkTextEncoder: false, embeddingPrompts: group.jobs.flatMap((j) => [j.planned.asset.prompt, j.prepared.settings.negativePrompt]) });
    try {
      for (const { planned: p, prepared } of group.jobs) {
        if (env.signal?.aborted) break;
        const started = performance.now();
        const made = await generate(bundle, prepared.request(p.asset.prompt, prepared.settings.seed!));
        if (env.signal?.aborted) break;
        const bytes = await encoded(made.images[0]!, p.asset);
        await writeFileAtomic(join(projectDir, p.asset.path), bytes, { ifExists: 'overwrite' });
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        next.assets[p.asset.path] = { model: p.model!.hash, diffuse: VERSION, provider: bundle.provider, params: p.params, sha256 };
        await writeLock(lockPath, next);
        result.built.push(p.asset.path);
        emit({ event: 'built', path: p.asset.path, sha256, seconds: (performance.now() - started) / 1000 });
      }
    } finally {
      await bundle.release();
    }
  }
  result.interrupted = Boolean(env.signal?.aborted) && result.built.length < stale.length;
  if (!existsSync(lockPath) || readFileSync(lockPath, 'utf8') !== lockText(next)) await writeLock(lockPath, next);
  emit({ event: 'done', built: result.built.length, fresh: assets.length - stale.length, lock: lockPath });
  return result;
}

/** Each output's parameters hash and model, and whether it is fresh: in the lock with the same inputs, and its file unchanged. */
async function plan(assets: readonly Asset[], lock: Lock, projectDir: string, options: BuildOptions, env: BuildEnv, emit: (e: BuildEvent) => void): Promise<Planned[]> {
  const models = new Map<string, Promise<PlannedModel | string>>();
  const out: Planned[] = [];
  for (const asset of assets) {
    const ref = modelRef(asset.values.model, projectDir);
    const key = JSON.stringify([ref, asset.command]);
    if (!models.has(key)) models.set(key, chosenModel(ref, asset.command, options, env));
    const model = await models.get(key)!;
    const entry = lock.assets[asset.path];
    const parts = typeof model === 'string' ? model : await partsOf(asset, model, projectDir, options, env, models);
    // With --check, a model, refiner or VAE that is not here makes the output unverifiable.
    if (typeof model === 'string' || typeof parts === 'string') {
      out.push({ asset, params: await paramsHash(asset, projectDir), model: undefined, reason: parts as string });
      continue;
    }
    // A refiner's or VAE's weights count as the inputs' bytes do: changed weights make the output stale.
    const params = await paramsHash(asset, projectDir, { ...(parts.refiner ? { refiner: parts.refiner.hash } : {}), ...(parts.vae ? { vae: parts.vae.hash } : {}) });
    const reason = options.force ? 'forced' : staleness(entry, params, model.hash, join(projectDir, asset.path));
    if (!reason && entry && options.device !== 'auto' && entry.provider !== options.device) {
      emit({ event: 'note', path: asset.path, message: `made on ${entry.provider}, this build runs on ${options.device}: its inputs are unchanged so it is kept; made here it may differ (files are byte-equal only on one provider); --force makes it here` });
    }
    out.push({ asset, params, model, reason, ...(parts.refiner ? { refiner: parts.refiner } : {}), ...(parts.vae ? { vae: { dir: parts.vae.dir } } : {}) });
  }
  return out;
}

/** The refiner and VAE an output names, chosen as its model is (a reason string when --check cannot find one here). */
async function partsOf(
  asset: Asset,
  model: PlannedModel,
  projectDir: string,
  options: BuildOptions,
  env: BuildEnv,
  models: Map<string, Promise<PlannedModel | string>>,
): Promise<{ refiner?: PlannedModel; vae?: { dir: string; hash: string } } | string> {
  const out: { refiner?: PlannedModel; vae?: { dir: string; hash: string } } = {};
  const refinerRef = modelRef(asset.values.refiner, projectDir);
  if (refinerRef) {
    const key = JSON.stringify([refinerRef, 'img2img']);
    if (!models.has(key)) models.set(key, chosenModel(refinerRef, 'img2img', options, env));
    const refiner = await models.get(key)!;
    if (typeof refiner === 'string') return refiner.replace('its model', 'its refiner');
    out.refiner = refiner;
  }
  const vaeRef = modelRef(asset.values.vae, projectDir);
  if (vaeRef) {
    try {
      const { dir } = await env.chooseVae(vaeRef, readModelFiles(model.dir).vaeScalingFactor, options.offline || Boolean(options.check));
      out.vae = { dir, hash: await vaeHash(dir) };
    } catch (err) {
      if (!options.check || !(err instanceof DiffuseError)) throw err;
      return `its VAE cannot be checked here (${err.message})`;
    }
  }
  return out;
}

/** The VAE's graphs (decoder, and encoder when there is one) and the weights they read. */
async function vaeHash(dir: string): Promise<string> {
  const parts = ['vae_decoder', 'vae_encoder'].map((p) => join(dir, p, 'model.onnx')).filter((f) => existsSync(f));
  const hashes = await Promise.all(parts.map((f) => weightsHash(f)));
  return createHash('sha256').update(hashes.join(',')).digest('hex');
}

/** With --check a model that is not here makes its outputs unverifiable (stale); a build fails on it. */
async function chosenModel(ref: string | undefined, command: GeneratingCommand, options: BuildOptions, env: BuildEnv): Promise<PlannedModel | string> {
  try {
    const chosen = await env.chooseModel(ref ?? '', command, options.offline || Boolean(options.check));
    return { ...chosen, hash: await modelHash(chosen.dir) };
  } catch (err) {
    if (!options.check || !(err instanceof DiffuseError)) throw err;
    return `its model cannot be checked here (${err.message})`;
  }
}

function staleness(entry: LockEntry | undefined, params: string, model: string, file: string): string | undefined {
  if (!entry) return 'not in the lock';
  if (!existsSync(file)) return 'missing';
  if (entry.params !== params) return 'its settings, prompt or inputs changed';
  if (entry.model !== model) return `the model changed (${entry.model} -> ${model})`;
  if (createHash('sha256').update(readFileSync(file)).digest('hex') !== entry.sha256) return 'the file differs from the one the lock records';
  return undefined;
}

/** A model folder named relative to the manifest's folder; registry ids and hf: references as written. */
function modelRef(value: unknown, projectDir: string): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.startsWith('hf:') || !/[\\/]|^\./.test(value)) return value;
  const inProject = resolve(projectDir, value);
  return existsSync(inProject) ? inProject : value;
}

/** Folders of files a prompt may name, relative to the manifest's folder as every path in it is. */
const FOLDER_KEYS = ['embeddingsDir', 'loraDir', 'hypernetworkDir'] as const;

interface Job {
  planned: Planned;
  prepared: PreparedGeneration;
}

/** The output as the typed request the commands build: its values as flags, input paths made absolute. */
async function jobOf(p: Planned, projectDir: string, options: BuildOptions): Promise<Job> {
  const values: Record<string, unknown> = { ...p.asset.values, device: options.device, ...(options.threads ? { threads: options.threads } : {}) };
  for (const key of [...INPUT_KEYS, ...FOLDER_KEYS]) if (typeof values[key] === 'string') values[key] = resolve(projectDir, values[key] as string);
  const resolved = resolveSettings({ values: {}, path: undefined, notRun: [] }, values, p.asset.command);
  const prepared = await prepareGeneration(p.asset.command, resolved, p.model!, p.refiner);
  // The load opens the chosen VAE folder, not the reference the manifest wrote.
  const load = { ...prepared.load, ...(p.vae ? { vae: p.vae.dir } : {}) };
  return { planned: p, prepared: withPromptNetworks({ ...prepared, load }, p.asset.prompt) };
}

async function encoded(made: { image: Parameters<typeof fitToSize>[0]; metadata: Parameters<typeof metadataInfotext>[0] }, asset: Asset): Promise<Buffer> {
  const { resize, quality } = asset.post;
  const image = resize ? fitToSize(made.image, resize.width, resize.height, 'just-resize') : made.image;
  return encodeImage(image, asset.format, { parameters: metadataInfotext(made.metadata), ...(quality ? { quality } : {}) });
}
