import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { findUpscaler, loadRegistry } from '../models/index.js';
import { resolveOrPull } from './model-choice.js';

/** An upscaler graph to open, and the name the metadata records for it (A1111's label, or the file's name as A1111 names ESRGAN files). */
export interface ChosenUpscaler {
  path: string;
  name: string;
}

/** The upscaler used when none is named: A1111's "R-ESRGAN 4x+". */
export const DEFAULT_UPSCALER = 'realesrgan-x4plus';

/**
 * `--model` of upscale (or --sd-upscale-upscaler) to a graph: a registry upscaler (pulled as models are:
 * with --yes, after a question on a terminal, else refused with the pull command), or a .onnx file.
 */
export async function chooseUpscaler(ref: string, flag: string, options: { offline: boolean; yes: boolean; quiet: boolean }): Promise<ChosenUpscaler> {
  const registry = loadRegistry();
  const entry = findUpscaler(registry, ref);
  if (entry) {
    const pulled = await resolveOrPull(ref, { offline: options.offline }, options.yes, options.quiet);
    return { path: join(pulled.dir, entry.files[0]!), name: entry.name };
  }
  const path = resolve(ref);
  if (!ref.toLowerCase().endsWith('.onnx') || !existsSync(path) || !statSync(path).isFile()) {
    const ids = registry.upscalers.map((u) => u.id).join(', ');
    throw new UsageError(`${flag} ${ref}: not an upscaler of the registry (${ids || 'none listed'}) nor an existing .onnx file`);
  }
  return { path, name: basename(path).replace(/\.onnx$/i, '') };
}
