import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import chalk from 'chalk';

import { UsageError } from '../errors.js';
import {
  addLocalModel,
  approxDownloadBytes,
  cacheRoot,
  listModels,
  loadRegistry,
  parseModelRef,
  pullModel,
  pruneDerivedGraphs,
  removeModel,
  resolveModel,
  TASKS,
  verifyModel,
  type FileSetEntry,
  type Task,
} from '../models/index.js';
import { formatBytes, pullProgress } from './pull-progress.js';
import { needsConversion } from '../graphs/converted-cache.js';
import { openModelSource } from '../graphs/model-source.js';
import { resolve } from 'node:path';

function parseTask(raw: string | undefined): Task {
  const task = (raw ?? 'txt2img') as Task;
  if (!TASKS.includes(task)) throw new UsageError(`--task must be one of ${TASKS.join(', ')} (got '${raw}')`);
  return task;
}

/** `models verify|rm|path` name a downloaded or registered model; a folder path is refused with what to do instead. */
function refusePath(ref: string, command: 'verify' | 'rm'): void {
  if (ref.trim() === '') throw new UsageError(`models ${command}: the model reference is empty`);
  if (parseModelRef(ref).kind !== 'path') return;
  const why =
    command === 'verify'
      ? 'only downloaded models have checksums to verify against (a folder is checked when a command loads it)'
      : 'diffuse deletes only what it downloaded, and forgets ids registered with models add';
  throw new UsageError(`models ${command}: ${ref} is a folder path, not a registry id, hf:org/repo or local id; ${why}`);
}

function print(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Registry, Hub downloads and the cache; the library is src/models, this is only its CLI. */
export function defineModels(models: Command): Command {

  models
    .command('list')
    .description('the registry and what is installed')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const registry = loadRegistry();
      const { cached, local } = await listModels();
      const rows = registry.models.map((m) => {
        const here = cached.find((c) => c.ids.includes(m.id));
        return {
          id: m.id,
          name: m.name,
          default: m.id === registry.default,
          repo: `${m.repo}@${m.revision}`,
          download: approxDownloadBytes(registry, m, { task: 'txt2img' }),
          installed: here ? { tasks: here.tasks, bytes: here.bytes, dir: here.dir } : null,
          license: m.license.name,
        };
      });
      const fileSetRow = (v: FileSetEntry) => {
        const here = cached.find((c) => c.ids.includes(v.id) && v.files.every((f) => existsSync(join(c.dir, f))));
        return { id: v.id, name: v.name, repo: `${v.repo}@${v.revision}`, download: v.bytes, installed: here ? { bytes: here.bytes, dir: here.dir } : null, license: v.license.name };
      };
      const vaes = registry.vaes.map(fileSetRow);
      const upscalers = registry.upscalers.map(fileSetRow);
      const interrogators = registry.interrogators.map(fileSetRow);
      const controlnets = registry.controlnets.map(fileSetRow);
      const loras = registry.loras.map(fileSetRow);
      const preprocessors = registry.preprocessors.map(fileSetRow);
      const others = cached.filter((c) => c.ids.length === 0).map((c) => ({ repo: `${c.repo}@${c.revision}`, bytes: c.bytes, tasks: c.tasks, dir: c.dir }));
      print(opts.json, { cache: cacheRoot(), registry: rows, vaes, upscalers, interrogators, controlnets, loras, preprocessors, otherDownloads: others, local }, () => {
        const lines = [`cache: ${cacheRoot()}`];
        for (const r of rows) {
          const state = r.installed ? chalk.green(`installed (${r.installed.tasks.join(', ')}; ${formatBytes(r.installed.bytes)})`) : chalk.dim(`not installed (~${formatBytes(r.download)})`);
          lines.push(`${r.default ? '*' : ' '} ${r.id.padEnd(22)} ${state}  ${chalk.dim(`${r.repo}, ${r.license}`)}`);
        }
        for (const [what, list] of [['VAE', vaes], ['upscaler', upscalers], ['img2txt', interrogators], ['ControlNet', controlnets], ['LoRA', loras], ['preprocessor', preprocessors]] as const) {
          for (const v of list) {
            const state = v.installed ? chalk.green(`installed (${what}; ${formatBytes(v.installed.bytes)})`) : chalk.dim(`not installed (${what}, ~${formatBytes(v.download)})`);
            lines.push(`  ${v.id.padEnd(22)} ${state}  ${chalk.dim(`${v.repo}, ${v.license}`)}`);
          }
        }
        for (const o of others) lines.push(`  hf:${o.repo.padEnd(19)} ${chalk.green(`installed (${formatBytes(o.bytes)})`)}`);
        for (const l of local) lines.push(`  ${l.id.padEnd(22)} ${chalk.cyan('local')} ${l.path}`);
        lines.push(chalk.dim('* default model'));
        return lines.join('\n');
      });
    });

  models
    .command('pull')
    .description('download a model (registry id or hf:org/repo@revision) into the cache, verified')
    .argument('<ref>', 'registry id or hf:org/repo@revision')
    .option('--task <task>', `which files: ${TASKS.join(', ')}`, 'txt2img')
    .option('--safety-checker', 'also download the safety checker')
    .option('-q, --quiet', 'no progress output')
    .action(async (ref: string, opts: { task?: string; safetyChecker?: boolean; quiet?: boolean }) => {
      const progress = pullProgress({ quiet: Boolean(opts.quiet) });
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      process.once('SIGINT', onSigint);
      try {
        const result = await pullModel(ref, { task: parseTask(opts.task), safetyChecker: Boolean(opts.safetyChecker), onProgress: progress.listener, signal: abort.signal });
        process.stdout.write(`${result.dir}\n`);
      } finally {
        progress.stop();
        process.off('SIGINT', onSigint);
      }
    });

  models
    .command('verify')
    .description('re-hash a downloaded model against its manifest')
    .argument('<ref>')
    .option('--fix', 'delete files that fail, so the next pull fetches them again')
    .action(async (ref: string, opts: { fix?: boolean }) => {
      refusePath(ref, 'verify');
      const report = await verifyModel(ref, { fix: Boolean(opts.fix) });
      if (report.problems.length === 0) {
        process.stdout.write(`${report.ok.length} files verified in ${report.dir}\n`);
        return;
      }
      for (const p of report.problems) process.stdout.write(`${p.problem.padEnd(7)} ${p.path}\n`);
      process.exitCode = 1;
    });

  models
    .command('path')
    .description('print the folder of an installed model')
    .argument('<ref>')
    .action(async (ref: string) => {
      const resolved = await resolveModel(ref, { offline: true });
      // A path is printed only when it is a model folder: models path /etc is a mistake, not an answer.
      if (resolved.source === 'path' && !existsSync(join(resolved.dir, 'model_index.json'))) {
        throw new UsageError(`models path: ${resolved.dir} has no model_index.json: not a diffusers ONNX model folder`);
      }
      process.stdout.write(`${resolved.dir}\n`);
    });

  models
    .command('rm')
    .description('delete a downloaded model, or forget a local one')
    .argument('<ref>')
    .action(async (ref: string) => {
      refusePath(ref, 'rm');
      const removed = await removeModel(ref);
      process.stdout.write(`${removed.kind === 'cache' ? 'deleted' : 'forgot'} ${removed.path}\n`);
      for (const path of removed.derived ?? []) process.stdout.write(`deleted ${path}\n`);
    });

  models
    .command('prune')
    .description('delete what the cache derived from models that are gone: converted checkpoints and VAE files whose file was deleted, edited and optimised graphs')
    .action(() => {
      const deleted = pruneDerivedGraphs();
      for (const path of deleted) process.stdout.write(`deleted ${path}\n`);
      if (deleted.length === 0) process.stdout.write('nothing to prune\n');
    });

  models
    .command('add')
    .description('register a local diffusers ONNX folder, or a single-file checkpoint or diffusers PyTorch folder (converted on first use), under an id')
    .argument('<path>')
    .requiredOption('--id <name>', 'the id to use with --model')
    .option('--force', 'replace an existing registration')
    .action(async (path: string, opts: { id: string; force?: boolean }) => {
      const checkpoint = needsConversion(path);
      // A file (or PyTorch folder) is read enough to know it is a whole SD model before it gets a name.
      if (checkpoint) await (await openModelSource(resolve(path))).close();
      const added = await addLocalModel(cacheRoot(), loadRegistry(), path, opts.id, { force: Boolean(opts.force), checkpoint });
      process.stdout.write(`${opts.id} → ${added.path}${checkpoint ? ' (a checkpoint: converted on first use)' : ''}\n`);
    });

  return models;
}
