import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixDim, setInputElemType, wrapInputCast, wrapOutputCast } from '../../src/onnx/graph-edit.js';
import { ElemType } from '../../src/onnx/proto.js';
import { TINY_SD } from './cli.js';

/**
 * The tiny fixture as other exporters would have written it, built at test time by editing the
 * committed graphs (test/fixtures/tiny-sd declares input_ids int32, timestep float32 [steps],
 * float32 activations and a dynamic batch).
 */
export type Variant = 'timestep-int64' | 'ids-int64' | 'fp16-io' | 'fixed-batch';

type Edit = (model: Uint8Array) => Uint8Array;

const EDITS: Record<Variant, Partial<Record<string, Edit[]>>> = {
  // diffusers' own ONNX exports: an int64 timestep of shape [1].
  'timestep-int64': {
    unet: [(m) => setInputElemType(m, 'timestep', ElemType.INT64), (m) => fixDim(m, 'timestep', 0, 1)],
  },
  // Older transformers/optimum exports of the text encoder.
  'ids-int64': {
    text_encoder: [(m) => wrapInputCast(m, 'input_ids', ElemType.INT64)],
  },
  // optimum --fp16: every float input and output in half precision (the timestep too).
  'fp16-io': {
    unet: [
      (m) => wrapInputCast(m, 'sample', ElemType.FLOAT16),
      (m) => wrapInputCast(m, 'timestep', ElemType.FLOAT16),
      (m) => wrapInputCast(m, 'encoder_hidden_states', ElemType.FLOAT16),
      (m) => wrapOutputCast(m, 'out_sample', ElemType.FLOAT16),
    ],
    vae_decoder: [(m) => wrapInputCast(m, 'latent_sample', ElemType.FLOAT16), (m) => wrapOutputCast(m, 'sample', ElemType.FLOAT16)],
  },
  // Static-shape exports (e.g. for CoreML or TensorRT): batch fixed to 1.
  'fixed-batch': {
    unet: [
      (m) => fixDim(m, 'sample', 0, 1),
      (m) => fixDim(m, 'encoder_hidden_states', 0, 1),
      (m) => fixDim(m, 'out_sample', 0, 1),
      (m) => fixDim(m, 'timestep', 0, 1),
    ],
  },
};

export interface VariantDir {
  dir: string;
  dispose(): void;
}

/** A temporary copy of the fixture with the variant's graphs rewritten. */
export function makeVariant(variant: Variant): VariantDir {
  const dir = join(mkdtempSync(join(tmpdir(), `diffuse-${variant}-`)), 'tiny-sd');
  cpSync(TINY_SD, dir, { recursive: true });
  for (const [part, edits] of Object.entries(EDITS[variant])) {
    const path = join(dir, part, 'model.onnx');
    const edited = edits!.reduce<Uint8Array>((bytes, apply) => apply(bytes), new Uint8Array(readFileSync(path)));
    writeFileSync(path, edited);
  }
  return { dir, dispose: () => rmSync(join(dir, '..'), { recursive: true, force: true }) };
}
