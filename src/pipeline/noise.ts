import { createRng } from '../rng/index.js';
import type { Rng } from '../rng/types.js';
import type { NoiseSource } from '../schedulers/types.js';
import type { GenerationRequest } from './types.js';

/**
 * The noise of a whole batch: the initial latents and, continuing the same generators, the
 * per-step noise of ancestral and SDE samplers — the order both references draw them in.
 */
export function batchNoise(request: Pick<GenerationRequest, 'seed' | 'rng' | 'seedMode' | 'batchSize'>, perImage: number): NoiseSource {
  const { seed, rng, seedMode, batchSize } = request;
  if (seedMode === 'diffusers' || batchSize === 1) {
    const gen = createRng(rng, seed);
    return () => gen.randn(perImage * batchSize);
  }
  const gens: Rng[] = Array.from({ length: batchSize }, (_, i) => createRng(rng, seed + i));
  return () => {
    const out = new Float32Array(perImage * batchSize);
    gens.forEach((gen, i) => out.set(gen.randn(perImage), i * perImage));
    return out;
  };
}

/** The seed recorded for image i of a batch. */
export function imageSeed(request: Pick<GenerationRequest, 'seed' | 'seedMode'>, index: number): number {
  return request.seedMode === 'diffusers' ? request.seed : request.seed + index;
}
