import { join } from 'node:path';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { compare, readF32 } from './fixtures.js';
import { syntheticInput, type ArrayRef, type InputRef } from './synthetic-checkpoint.js';

/**
 * Running one built graph on a reference's inputs and holding its outputs to the torch module's:
 * the converted-model tests' shared steps (inputs drawn as tools/graph_fixture_refs.py draw()s them).
 */

/** ONNX Runtime and torch sum in different orders; a graph is held to this fraction of the reference's largest magnitude. */
export const GRAPH_TOLERANCE = 1e-5;

export async function runGraph(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
}

/** `actual` within GRAPH_TOLERANCE of the reference array `expected` stored in `dir`; returns the error seen. */
export function assertNearRef(what: string, actual: Float32Array | undefined, dir: string, expected: ArrayRef): number {
  assert.ok(actual, `${what}: no such output`);
  const e = compare(actual, readF32(join(dir, expected.file)));
  assert.ok(e.relToMax < GRAPH_TOLERANCE, `${what}: off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
  return e.relToMax;
}

export const drawnInput = (seed: number, input: InputRef): ort.Tensor => new ort.Tensor('float32', syntheticInput(seed, input.index, input.shape), input.shape);
export const tokenIds = (values: number[]): ort.Tensor => new ort.Tensor('int32', Int32Array.from(values), [1, values.length]);

/** An SDXL UNet reference: drawn sample, context and pooled text, given time ids (6 for a base, 5 for a refiner). */
export interface SdxlUnetRef {
  sample: InputRef;
  context: InputRef;
  text_embeds: InputRef;
  time_ids: number[][];
  timestep: number;
  out_sample: ArrayRef;
}

export async function checkSdxlUnet(what: string, path: string, seed: number, u: SdxlUnetRef, refDir: string): Promise<number> {
  const out = await runGraph(path, {
    sample: drawnInput(seed, u.sample),
    timestep: new ort.Tensor('float32', Float32Array.of(u.timestep), [1]),
    encoder_hidden_states: drawnInput(seed, u.context),
    text_embeds: drawnInput(seed, u.text_embeds),
    time_ids: new ort.Tensor('float32', Float32Array.from(u.time_ids.flat()), [u.time_ids.length, u.time_ids[0]!.length]),
  });
  return assertNearRef(what, out['out_sample'], refDir, u.out_sample);
}
