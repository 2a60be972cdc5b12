import { createInterface } from 'node:readline/promises';
import { fileSetUse, findEntry, loadRegistry, ModelNotCachedError, resolveModel, type RegistryEntry, type ResolvedModel, type Task } from '../models/index.js';
import { UsageError } from '../errors.js';
import type { Settings } from '../settings/options.js';
import { pullProgress } from './pull-progress.js';
import { modelFromCheckpoint } from './convert.js';
import { needsConversion } from '../graphs/converted-cache.js';
import { CheckpointError } from '../graphs/errors.js';

export interface ChosenModel {
  dir: string;
  entry?: RegistryEntry;
}

/**
 * `--model` (or the registry's default) to a folder: a checkpoint file or a diffusers PyTorch folder is converted
 * first (once: the conversion is cached). A registry model that is not installed is
 * downloaded with --yes, after a question on a terminal, and otherwise refused with the exact
 * command that fetches it — a script never starts a multi-gigabyte download by surprise.
 */
export async function chooseModel(settings: Pick<Settings, 'model' | 'offline' | 'yes'>, task: Task, quiet: boolean): Promise<ChosenModel> {
  if (settings.model && needsConversion(settings.model)) return { dir: await modelFromCheckpoint(settings.model, quiet) };
  if (!settings.model) refuseDefaultFor(task);
  const ref = settings.model || loadRegistry().default;
  // A VAE's, upscaler's or ControlNet's id names no model: said before anything downloads.
  const use = fileSetUse(loadRegistry(), ref);
  if (use) throw new UsageError(`${ref} is ${use}, not as a model`);
  const resolved = await resolveOrPull(ref, { offline: settings.offline, task }, settings.yes, quiet);
  // a PyTorch registry entry keeps its entry: its recommended sampler, steps and CFG still apply
  return resolved.checkpoint ? { dir: await modelFromCheckpoint(resolved.dir, quiet), ...(resolved.entry ? { entry: resolved.entry } : {}) } : resolved;
}

/**
 * A registry or hub reference from the cache; when it is not there, downloaded with --yes or
 * after a question on a terminal, and otherwise refused with the exact pull command.
 * `beforeDownload` runs only when a download would start: checks of the user's input that would
 * make the download pointless, skipped when the files are already here.
 */
export async function resolveOrPull(
  ref: string, base: { offline: boolean; task?: Task }, yes: boolean, quiet: boolean, beforeDownload?: () => Promise<void>,
): Promise<ResolvedModel> {
  try {
    return await resolveModel(ref, { ...base, allowDownload: false });
  } catch (err) {
    if (!(err instanceof ModelNotCachedError) || base.offline) throw err;
    await beforeDownload?.();
    if (!yes && !(await confirm(`${ref} is not downloaded yet. Download it now?`))) {
      err.message = `${err.message} (or pass --yes to let diffuse download it)`;
      throw err;
    }
    const progress = pullProgress({ quiet });
    try {
      return await resolveModel(ref, { ...base, allowDownload: true, onProgress: progress.listener });
    } finally {
      progress.stop();
    }
  }
}

/**
 * `read` of what registry id `id` pulled. A file the entry's repo holds that is no such weights stays pulled (it is
 * the repo's content, checked against the Hub's hash, so downloading it again brings the same bytes): the refusal
 * names the command that deletes it instead.
 */
export async function readPulled<T>(id: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof CheckpointError) err.message = `${err.message.replace(/; re-download it$/, '')}; it is what the registry's ${id} pulled: \`diffuse models rm ${id}\` deletes it`;
    throw err;
  }
}

/** Without --model, a task the default model cannot do is refused before anything loads or downloads. */
function refuseDefaultFor(task: Task): void {
  const registry = loadRegistry();
  if (findEntry(registry, registry.default)?.tasks.includes(task) !== false) return;
  const serving = registry.models.filter((m) => m.tasks.includes(task)).map((m) => m.id);
  const which = serving.length ? `one of: ${serving.join(', ')}` : 'a model folder or hf:org/repo that does; the README says which';
  throw new UsageError(`the default model (${registry.default}) cannot do ${task}: pass --model (${which})`);
}

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
