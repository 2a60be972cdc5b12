import { createRng } from '../rng/index.js';
import type { Rng } from '../rng/types.js';
import type { NoiseSource } from '../schedulers/types.js';
import { SAMPLERS } from '../schedulers/index.js';
import { brownianSigmaRange, brownianTreeNoise } from '../rng/brownian-tree.js';
import type { GenerationRequest } from './types.js';
import { slerpNoise } from './variation.js';
import { imageSeed } from './seeds.js';

export interface BatchNoise {
  /** The starting noise: the first draw of `batch`, mixed with the variation noise when asked. */
  initial(): Float32Array;
  /**
   * The noise of the whole batch: the initial latents and, continuing the same generators, the
   * per-step noise of ancestral and SDE samplers — the order the references draw them in.
   */
  batch: NoiseSource;
  /** n values from the first image's generator: diffusers draws the VAE posterior sample of a single init image there. */
  single(n: number): Float32Array;
}

export function batchNoise(
  request: Pick<GenerationRequest, 'seed' | 'rng' | 'seedMode' | 'batchSize' | 'variation' | 'ensd'>,
  latentDims: readonly [number, number, number],
): BatchNoise {
  const { seed, rng, seedMode, batchSize, variation } = request;
  const perImage = latentDims[0] * latentDims[1] * latentDims[2];
  // A1111 draws each image's variation noise from a fresh generator before its main noise.
  const variationNoise = variation && variation.strength > 0 ? Array.from({ length: batchSize }, (_, i) => createRng(rng, variation.seed + i).randn(perImage)) : undefined;
  const mixed = (noise: Float32Array): Float32Array => {
    if (!variation || !variationNoise) return noise;
    const out = new Float32Array(noise.length);
    variationNoise.forEach((sub, i) => out.set(slerpNoise(variation.strength, noise.subarray(i * perImage, (i + 1) * perImage), sub, latentDims), i * perImage));
    return out;
  };
  // A1111's ImageRNG: once the starting noise is drawn, ENSD re-seeds every image's generator.
  const ensd = request.ensd ?? 0;
  if (seedMode === 'diffusers' || batchSize === 1) {
    let gen = createRng(rng, seed);
    const batch = () => gen.randn(perImage * batchSize);
    const initial = () => {
      const x = mixed(batch());
      if (ensd) gen = createRng(rng, seed + ensd);
      return x;
    };
    return { initial, batch, single: (n) => gen.randn(n) };
  }
  let gens: Rng[] = Array.from({ length: batchSize }, (_, i) => createRng(rng, imageSeed(request, i)));
  const batch = () => {
    const out = new Float32Array(perImage * batchSize);
    gens.forEach((gen, i) => out.set(gen.randn(perImage), i * perImage));
    return out;
  };
  const initial = () => {
    const x = mixed(batch());
    if (ensd) gens = Array.from({ length: batchSize }, (_, i) => createRng(rng, imageSeed(request, i) + ensd));
    return x;
  };
  return { initial, batch, single: (n) => gens[0]!.randn(n) };
}

/**
 * The noise the sampler draws during the loop. SDE samplers get k-diffusion's Brownian tree over
 * the sigmas they walk: one tree per image seeded as the image (A1111's per-image seeds) or one
 * for the whole batch (seedMode 'diffusers': ComfyUI's single seed), on the request's generator
 * (A1111 builds its trees on the GPU: --rng philox). Everything else continues the seed's stream.
 */
export function samplerNoise(
  request: Pick<GenerationRequest, 'seed' | 'rng' | 'seedMode' | 'batchSize' | 'variation' | 'sampler' | 'sdeNoise'>,
  sigmas: ArrayLike<number>,
  latentDims: readonly [number, number, number],
  stream: NoiseSource,
): NoiseSource {
  if (!('brownianNoise' in SAMPLERS[request.sampler]) || (request.sdeNoise ?? 'brownian') === 'plain') return stream;
  const perImageSeeds = request.seedMode !== 'diffusers' && request.batchSize > 1;
  return brownianTreeNoise({
    shape: [request.batchSize, ...latentDims],
    seed: perImageSeeds ? Array.from({ length: request.batchSize }, (_, i) => imageSeed(request, i)) : request.seed,
    ...brownianSigmaRange(sigmas),
    // A larger interval cache than torchsde's 45 (values do not depend on it): consecutive
    // queries share ancestors, and re-deriving them was a third of the time (65 -> 44 ms per
    // query at 4x64x64, 13 MB of cache).
    tree: { rng: request.rng, cacheSize: 200 },
  });
}
