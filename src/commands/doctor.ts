import type { Command } from 'commander';
import chalk from 'chalk';
import { loadConfig, resolveSettings } from '../settings/config.js';
import * as ort from 'onnxruntime-node';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { cacheRoot, listModels, verifyModel } from '../models/index.js';
import { probeProviderIsolated, type ProviderStatus } from '../onnx/probe.js';
import { int8Support } from '../onnx/cpu-features.js';
import { cudaInstallCommand } from '../onnx/cuda-install.js';
import { formatBytes } from './pull-progress.js';
import { VERSION } from '../version.js';


/** Why a provider is not usable, in terms of what the user can do about it. */
function advice(status: ProviderStatus): string {
  if (status.works) return '';
  switch (status.provider) {
    case 'cuda':
      return `CUDA needs onnxruntime-node's CUDA provider: \`${cudaInstallCommand()}\` downloads it; CUDA 12 and cuDNN 9 must be on the library path`;
    case 'dml':
      return 'DirectML is built into onnxruntime-node on Windows only';
    case 'coreml':
      return 'CoreML is built into onnxruntime-node on macOS only';
    case 'webgpu':
      return 'WebGPU needs a GPU and driver that Dawn supports';
    default:
      return '';
  }
}

/** Free space where the cache lives, or of the nearest existing parent. */
async function freeBytes(path: string): Promise<number | undefined> {
  for (let p = path; ; p = dirname(p)) {
    const info = await statfs(p).catch(() => undefined);
    if (info) return info.bavail * info.bsize;
    if (dirname(p) === p) return undefined;
  }
}

/** Whether generation runs the safety checker here (the config file in reach may turn it on), and how to change it. */
async function safetyCheckerSetting(): Promise<string> {
  const config = await loadConfig(process.cwd()).catch(() => undefined);
  const resolved = config ? resolveSettings(config, {}) : undefined;
  if (resolved?.settings.safetyChecker) {
    return `on (${resolved.configPath ?? 'config'}): every image is checked, a flagged one ${resolved.settings.safetyAction === 'blur' ? 'blurred' : 'made black'}; models need safety_checker/ ('diffuse models pull <id> --safety-checker')`;
  }
  return "off, as in A1111 and ComfyUI; for a service turn it on with --safety-checker or 'safetyChecker: true' in a config file (the model needs safety_checker/: 'diffuse models pull <id> --safety-checker')";
}

export function defineDoctor(cmd: Command): Command {
  return cmd
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const providers = await Promise.all((['cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const).map(probeProviderIsolated));
      const root = cacheRoot();
      const { cached, local } = await listModels();
      const models = await Promise.all(
        cached.map(async (m) => {
          const check = await verifyModel(`hf:${m.repo}@${m.revision}`).catch((err: Error) => ({ problems: [{ path: '', problem: err.message }] }));
          return { repo: `${m.repo}@${m.revision}`, ids: m.ids, bytes: m.bytes, tasks: m.tasks, healthy: check.problems.length === 0, problems: check.problems.length };
        }),
      );
      const report = {
        diffuse: VERSION,
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
        providers: providers.map((p) => ({ ...p, advice: advice(p) })),
        int8: int8Support(),
        safetyChecker: await safetyCheckerSetting(),
        cache: { path: root, freeBytes: await freeBytes(root) },
        models,
        local,
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const out: string[] = [
        `diffuse ${report.diffuse}, Node ${report.node} on ${report.platform}, onnxruntime-node ${report.onnxruntime}`,
        'execution providers:',
      ];
      for (const p of report.providers) {
        const mark = p.works ? chalk.green('ok  ') : chalk.yellow('no  ');
        out.push(`  ${mark}${p.provider.padEnd(7)} ${p.works ? p.detail : p.detail.slice(0, 120)}`);
        if (p.advice) out.push(`        ${chalk.dim(p.advice)}`);
      }
      const free = report.cache.freeBytes === undefined ? 'unknown' : formatBytes(report.cache.freeBytes);
      out.push(`int8 (--quantize): ${report.int8.note}`);
      out.push(`safety checker: ${report.safetyChecker}`);
      out.push(`cache: ${report.cache.path} (${free} free)`);
      if (models.length === 0 && local.length === 0) out.push(`  no models installed; 'diffuse models list' shows what can be pulled`);
      for (const m of models) {
        const health = m.healthy ? chalk.green('verified') : chalk.red(`${m.problems} problem(s): run 'diffuse models verify hf:${m.repo}'`);
        out.push(`  ${(m.ids[0] ?? `hf:${m.repo}`).padEnd(22)} ${formatBytes(m.bytes).padStart(9)}  ${health}`);
      }
      for (const l of local) out.push(`  ${l.id.padEnd(22)} ${chalk.cyan('local')} ${l.path}`);
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
