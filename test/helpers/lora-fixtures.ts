import { join } from 'node:path';
import { convertCheckpoint } from '../../src/graphs/convert.js';
import { encodeSafetensors } from '../../src/text/safetensors-write.js';
import { FIXTURES, readJson } from './fixtures.js';
import type { ReferenceCase } from './reference-case.js';
import { writeCheckpoint } from './synthetic-checkpoint.js';

/** tools/make_lora_refs.py's cases: the graph fixture sd1 with a network applied, diffusers' final latents. */
export const LORA_FIXTURES = join(FIXTURES, 'lora');

export interface NetworkCase extends Omit<ReferenceCase, 'scheduler'> {
  /** 'tiny-sd' for test/fixtures/tiny-sd (optimum's export); absent for the converted sd1 graph fixture. */
  model?: 'tiny-sd';
  lora?: string;
  te?: number;
  unet?: number;
  hypernetwork?: string;
  strength?: number;
  final_latents: { file: string; shape: number[] };
}

export interface NetworkFixtures {
  hashes: Record<string, string>;
  scheduler: ReferenceCase['scheduler'];
  cases: NetworkCase[];
}

export function networkFixtures(): NetworkFixtures {
  return readJson<NetworkFixtures>(join(LORA_FIXTURES, 'cases.json'));
}

/** The sd1 graph fixture converted to a model folder (fp32) under `work`. */
export async function convertedSd1(work: string): Promise<string> {
  return (await convertCheckpoint(writeCheckpoint(work, 'sd1'), join(work, 'onnx'), { precision: 'fp32' })).dir;
}

/** A safetensors file from float32 tensors (header in insertion order, as the safetensors library writes it). */
export function safetensorsBytes(tensors: Record<string, { shape: number[]; values: ArrayLike<number> }>, metadata?: Record<string, string>): Uint8Array {
  return encodeSafetensors(
    Object.entries(tensors).map(([name, t]) => ({ name, dtype: 'F32', shape: t.shape, data: new Uint8Array(Float32Array.from(t.values).buffer) })),
    metadata,
  );
}
