import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { recordSource } from './derived-source.js';
import { cpuIdentity } from './cpu-features.js';

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
 * The saved graph is only valid for the same model files, the same ONNX Runtime and the same
 * CPU (optimisation picks CPU-specific layouts and kernels: cpuIdentity), so all of those key the entry. The
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
