import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { recordSource } from './derived-source.js';
import { cpuFlags, readCpuinfo } from './cpu-features.js';

const MODEL = 'model.onnx';
const DATA = 'model.onnx_data';
const DONE = 'complete';

export interface OptimizedModelCache {
  /** A complete entry exists. */
  readonly ready: boolean;
  readonly modelPath: string;
  discard(): void;
  /** Where ORT writes a new entry; commit() publishes it whole or not at all. */
  begin(): { modelPath: string; dataFileName: string; commit(): void; abort(): void };
}

/**
 * The CPU as the optimised graph depends on it: its model name and its vector instruction sets. The name alone is
 * not enough: virtual machines show generic names ("Intel(R) Xeon(R) Processor") over different instruction sets,
 * and a graph optimised with AVX-512's 16-float NCHWc blocks gives wrong numbers, silently, on an AVX2 CPU's
 * 8-float kernels (seen: tiny-sd's UNet 1.8 of max off, run as the AVX2 class with tools/cpu-class).
 */
export function cpuIdentity(cpuinfo: string | null = readCpuinfo()): string {
  const vector = [...cpuFlags(cpuinfo)].filter((f) => /^(sse|avx|fma|f16c|amx|asimd|sve|i8mm|bf16|fphp)/.test(f)).sort();
  return `${arch()}:${cpus()[0]?.model ?? ''}:${vector.join(' ')}`;
}

/**
 * The saved graph is only valid for the same model files, the same ONNX Runtime and the same
 * CPU (optimisation picks CPU-specific layouts and kernels), so all of those key the entry. The
 * model's folder is part of the key by file names, sizes and times (external weights live beside
 * model.onnx), which is cheap where hashing gigabytes is not.
 */
function cacheKey(modelPath: string, cpu: string): string {
  const real = realpathSync(modelPath);
  const dir = dirname(real);
  const files = readdirSync(dir)
    .sort()
    .map((name) => {
      const st = statSync(join(dir, name));
      return st.isFile() ? `${name}:${st.size}:${st.mtimeMs}` : '';
    });
  const ortVersion = ort.env.versions.node ?? ort.env.versions.common;
  return createHash('sha256').update(JSON.stringify([real, files, cpu, ortVersion])).digest('hex').slice(0, 32);
}

export function cachedOptimizedModel(modelPath: string, cacheDir: string, cpu: string = cpuIdentity()): OptimizedModelCache {
  const entry = join(cacheDir, cacheKey(modelPath, cpu));
  const model = join(entry, MODEL);
  return {
    ready: existsSync(join(entry, DONE)) && existsSync(model),
    modelPath: model,
    discard: () => rmSync(entry, { recursive: true, force: true }),
    begin: () => {
      const staging = `${entry}.${process.pid}.${Date.now()}.tmp`;
      mkdirSync(staging, { recursive: true });
      return {
        modelPath: join(staging, MODEL),
        dataFileName: DATA,
        commit: () => {
          recordSource(staging, modelPath);
          writeFileSync(join(staging, DONE), '');
          try {
            renameSync(staging, entry);
          } catch {
            // Another process published the same entry first: theirs is as good as ours.
            rmSync(staging, { recursive: true, force: true });
          }
        },
        abort: () => rmSync(staging, { recursive: true, force: true }),
      };
    },
  };
}
