import { createRng } from '../rng/index.js';
import type { Rng } from '../rng/types.js';
import type { NoiseSource } from '../schedulers/types.js';
import type { GenerationRequest } from './types.js';

export interface BatchNoise {
  /**
   * The noise of the whole batch: the initial latents and, continuing the same generators, the
   * per-step noise of ancestral and SDE samplers — the order the references draw them in.
   */
  batch: NoiseSource;
  /** n values from the first image's generator: diffusers draws the VAE posterior sample of a single init image there. */
  single(n: number): Float32Array;
}

export function batchNoise(request: Pick<GenerationRequest, 'seed' | 'rng' | 'seedMode' | 'batchSize'>, perImage: number): BatchNoise {
  const { seed, rng, seedMode, batchSize } = request;
  if (seedMode === 'diffusers' || batchSize === 1) {
    const gen = createRng(rng, seed);
    return { batch: () => gen.randn(perImage * batchSize), single: (n) => gen.randn(n) };
  }
  const gens: Rng[] = Array.from({ length: batchSize }, (_, i) => createRng(rng, seed + i));
  return {
    batch: () => {
      const out = new Float32Array(perImage * batchSize);
      gens.forEach((gen, i) => out.set(gen.randn(perImage), i * perImage));
      return out;
    },
    single: (n) => gens[0]!.randn(n),
  };
}

/** The seed recorded for image i of a batch. */
export function imageSeed(request: Pick<GenerationRequest, 'seed' | 'seedMode'>, index: number): number {
  return request.seedMode === 'diffusers' ? request.seed : request.seed + index;
}
