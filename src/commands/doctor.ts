import type { Command } from 'commander';
import chalk from 'chalk';
import * as ort from 'onnxruntime-node';
import { probeProvider, type ProviderStatus } from '../onnx/probe.js';
import { VERSION } from '../version.js';

const CUDA_HINT =
  'CUDA needs ONNX Runtime\'s CUDA build: reinstall with `npm install -g diffuse --onnxruntime-node-install=cuda12` ' +
  '(or in a project: `npm install onnxruntime-node --onnxruntime-node-install=cuda12`), with CUDA 12 and cuDNN 9 on the library path';

/** Why a provider is not usable, in terms of what the user can do about it. */
function advice(status: ProviderStatus): string {
  if (status.works) return '';
  switch (status.provider) {
    case 'cuda':
      return CUDA_HINT;
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

export function registerDoctor(program: Command): Command {
  return program
    .command('doctor')
    .description('check Node, ONNX Runtime, execution providers, cache and models')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const providers = await Promise.all((['cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const).map(probeProvider));
      const report = {
        diffuse: VERSION,
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
        providers: providers.map((p) => ({ ...p, advice: advice(p) })),
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
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
