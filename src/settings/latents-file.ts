import { UsageError } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { decodeNpy, NpyFormatError } from '../onnx/npy.js';
import type { ModelFiles } from '../pipeline/model-files.js';
import type { GenerationRequest } from '../pipeline/types.js';
import { MAX_SIDE } from './options.js';
import { shortHash } from './request.js';

/** 256 MB: a batch of 64 SDXL latents at 2048x2048 is 256 MB of float32. */
const MAX_LATENTS_BYTES = 256 * 2 ** 20;

/**
 * --latents: a .npy of shape (batch, C, height/f, width/f) — what `diffuse invert` writes, or
 * diffusers users save — read before the model loads, its shape checked against the model's
 * latent channels, the batch size and (when given) the painted size, which it otherwise sets.
 */
export async function readLatentsFile(
  path: string,
  files: Pick<ModelFiles, 'latentChannels' | 'vaeScaleFactor'>,
  want: { batchSize: number; width: number | undefined; height: number | undefined },
): Promise<{ field: Pick<GenerationRequest, 'initialLatents'>; width: number; height: number }> {
  const bytes = await readInputFile(path, { label: '--latents', maxBytes: MAX_LATENTS_BYTES });
  let tensor;
  try {
    tensor = decodeNpy(bytes);
  } catch (err) {
    if (err instanceof NpyFormatError) throw new UsageError(`--latents ${path}: ${err.message}`, { cause: err });
    throw err;
  }
  const { shape, data } = tensor;
  const f = files.vaeScaleFactor;
  const expected = `(${want.batchSize}, ${files.latentChannels}, height/${f}, width/${f})`;
  if (shape.length !== 4 || shape[0] !== want.batchSize || shape[1] !== files.latentChannels || shape[2]! < 1 || shape[3]! < 1) {
    throw new UsageError(`--latents ${path}: shape (${shape.join(', ')}) does not fit this run; it needs ${expected} (batch size ${want.batchSize}, ${files.latentChannels} latent channels)`);
  }
  if (!data.every(Number.isFinite)) throw new UsageError(`--latents ${path}: holds NaN or infinite values`);
  const width = shape[3]! * f;
  const height = shape[2]! * f;
  if (width > MAX_SIDE || height > MAX_SIDE) throw new UsageError(`--latents ${path}: its latents paint ${width}x${height}; the largest side is ${MAX_SIDE}`);
  if ((want.width !== undefined && want.width !== width) || (want.height !== undefined && want.height !== height)) {
    throw new UsageError(`--latents ${path}: its latents paint ${width}x${height}, not the ${want.width ?? width}x${want.height ?? height} asked for; leave --width/--height out or pass latents of that size`);
  }
  return { field: { initialLatents: { values: data, hash: shortHash(bytes) } }, width, height };
}
