import type { GenerationRequest } from './types.js';

/**
 * Which seed each image gets: the one seed policy of the house (A1111's, with diffusers' single
 * generator as an option). The noise itself is drawn in noise.ts from these seeds.
 */

/**
 * The seed of image i of a batch: seed + i as A1111 counts, except that with a variation
 * strength A1111 keeps the seed and counts up the variation seed instead, and with one generator
 * for the batch (seedMode 'diffusers') every image shares the seed.
 */
export function imageSeed(request: Pick<GenerationRequest, 'seed' | 'seedMode' | 'variation'>, index: number): number {
  if (request.seedMode === 'diffusers' || varies(request)) return request.seed;
  return request.seed + index;
}

const varies = (request: Pick<GenerationRequest, 'variation'>): boolean => Boolean(request.variation && request.variation.strength > 0);

/**
 * The request of batch number `batch` of a run of several (A1111's batch count): seeds count on
 * across batches (by the batch size, or by one with a single generator), except with a
 * variation strength, where the variation seeds count on instead.
 */
export function nthBatch(request: GenerationRequest, batch: number): GenerationRequest {
  const seed = varies(request) ? request.seed : request.seedMode === 'diffusers' ? request.seed + batch : request.seed + batch * request.batchSize;
  const variation = request.variation ? { variation: { ...request.variation, seed: request.variation.seed + batch * request.batchSize } } : {};
  return { ...request, seed, ...variation };
}

/** Image i of a batch as a request of its own (outpainting's passes run each image alone): its seed and variation seed. */
export function nthImage(request: GenerationRequest, index: number): GenerationRequest {
  const seed = varies(request) ? request.seed : request.seed + index;
  const variation = request.variation ? { variation: { ...request.variation, seed: request.variation.seed + index } } : {};
  return { ...request, seed, ...variation, batchSize: 1 };
}
