import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { ROOT } from './cli.js';

export const FIXTURES = join(ROOT, 'test/fixtures');

/** Raw little-endian float32, as the reference scripts write them. */
export function readF32(path: string): Float32Array {
  const buf = readFileSync(path);
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

/** A JSON reference; the large ones are stored gzipped (.json.gz) to keep the fixtures small. */
export function readJson<T>(path: string): T {
  const bytes = readFileSync(path);
  return JSON.parse((path.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8')) as T;
}

export interface ErrorStats {
  maxAbs: number;
  /** maxAbs divided by the reference's largest magnitude. */
  relToMax: number;
}

export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>): ErrorStats {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} vs reference ${expected.length}`);
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  if (Number.isNaN(maxAbs)) maxAbs = Infinity;
  return { maxAbs, relToMax: maxAbs / (scale || 1) };
}
