import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { openInputFile } from '../input-file.js';
import { basename, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { convertCheckpoint, type Precision } from '../graphs/convert.js';
import { checkpointHashes, ensureConvertedModel, isCheckpointFile } from '../graphs/converted-cache.js';
import type { Prediction } from '../graphs/model-config.js';
import { addLocalModel, cacheRoot, convertedFolder, loadRegistry } from '../models/index.js';
import { convertProgress } from './convert-progress.js';

interface ConvertFlags {
  id?: string;
  precision: string;
  prediction?: string;
  output?: string;
  quiet?: boolean;
}

const PRECISIONS: readonly Precision[] = ['fp32', 'fp16'];
const PREDICTIONS: Readonly<Record<string, Prediction>> = { epsilon: 'epsilon', eps: 'epsilon', v: 'v_prediction', v_prediction: 'v_prediction' };

/** Where `--model <file>`, `--vae <file>` and `diffuse convert` keep converted checkpoints. */
export function convertedCache(): string {
  return convertedFolder(cacheRoot());
}

/**
 * `--model ./model.safetensors`: the cached conversion, made first (with progress on stderr) when
 * there is none. The generating commands' model choice (src/commands/model-choice.ts chooseModel)
 * calls this for a --model that is a file.
 */
export async function modelFromCheckpoint(path: string, quiet: boolean): Promise<string> {
  const progress = convertProgress({ quiet });
  try {
    return await ensureConvertedModel(resolve(path), convertedCache(), { onProgress: progress.listener });
  } finally {
    progress.stop();
  }
}

/**
 * `diffuse convert <file>`: a single-file checkpoint (.safetensors, .ckpt) to a diffusers ONNX
 * folder, in the cache (what `--model <file>` would use) or at -o; --id registers it as a local
 * model. Prints the folder's path on stdout.
 */
export function defineConvert(cmd: Command): Command {
  return cmd
    .argument('<file>', 'a .safetensors or .ckpt checkpoint, or a diffusers PyTorch folder')
    .option('--id <name>', 'register the result as a local model id (as `diffuse models add`)')
    .option('--precision <p>', 'fp32, or fp16: weights stored in half precision (half the disk; computed in float32)', 'fp32')
    .option('--prediction <type>', 'epsilon or v (SD 2.x: otherwise probed as A1111 does)')
    .option('-o, --output <dir>', 'write the folder here (it must not exist) instead of the cache')
    .option('-q, --quiet', 'no progress')
    .action(async (file: string, flags: ConvertFlags) => {
      const path = resolve(file);
      if (!existsSync(path)) throw new UsageError(`${file} does not exist; pass a checkpoint (.safetensors, .ckpt) or a diffusers model folder`);
      // A FIFO or a device would be hashed forever: only folders and regular files go on.
      if (!statSync(path).isDirectory()) openInputFile(path, { label: 'convert', maxBytes: Number.MAX_SAFE_INTEGER }).close();
      const precision = flags.precision as Precision;
      if (!PRECISIONS.includes(precision)) throw new UsageError(`--precision must be fp32 or fp16 (got '${flags.precision}')`);
      const prediction = flags.prediction === undefined ? undefined : PREDICTIONS[flags.prediction];
      if (flags.prediction !== undefined && !prediction) throw new UsageError(`--prediction must be epsilon or v (got '${flags.prediction}')`);
      const options = { precision, ...(prediction ? { prediction } : {}) };
      const progress = convertProgress({ quiet: flags.quiet === true });
      let dir: string;
      try {
        if (flags.output) {
          const hashes = isCheckpointFile(path) ? await checkpointHashes(path, convertedCache(), progress.listener) : undefined;
          dir = (await convertCheckpoint(path, resolve(flags.output), { ...options, ...(hashes ? { hashes } : {}), onProgress: progress.listener })).dir;
        } else {
          dir = await ensureConvertedModel(path, convertedCache(), { ...options, onProgress: progress.listener });
        }
      } finally {
        progress.stop();
      }
      if (flags.id) await addLocalModel(cacheRoot(), loadRegistry(), dir, flags.id, { force: false });
      process.stdout.write(`${dir}\n`);
      if (!flags.quiet && flags.id) process.stderr.write(`registered ${basename(file)} as "${flags.id}"\n`);
    });
}
