import { existsSync, readFileSync, rmSync } from 'node:fs';
import { cosine, psnr } from './metrics.js';
import type { OutputDistance } from './report.js';

/**
 * The files a diffuse worker leaves for the comparison with its reference row (WorkerArgs.output):
 * `<base>.latents` (float32) and `<base>.rgb` (8-bit image).
 */
export function clearOutput(base: string): void {
  for (const ext of ['.latents', '.rgb']) rmSync(`${base}${ext}`, { force: true });
}

/** Cosine of the final latents and PSNR of the images of two runs, or undefined when either left no output. */
export function outputDistance(base: string, reference: string): OutputDistance | undefined {
  const read = (b: string, ext: string): Uint8Array | undefined => (existsSync(`${b}${ext}`) ? new Uint8Array(readFileSync(`${b}${ext}`)) : undefined);
  const [la, lb, ia, ib] = [read(base, '.latents'), read(reference, '.latents'), read(base, '.rgb'), read(reference, '.rgb')];
  if (!la || !lb || !ia || !ib || la.length !== lb.length || ia.length !== ib.length) return undefined;
  const floats = (bytes: Uint8Array): Float32Array => new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return { latentCosine: cosine(floats(la), floats(lb)), psnrDb: psnr(ia, ib) };
}
