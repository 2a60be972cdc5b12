import type { suite } from 'uvu';
import { loadModel, type LoadOptions, type ModelBundle } from '../../src/pipeline/load.js';
import type { GenerationRequest } from '../../src/pipeline/types.js';
import { TINY_SD } from './cli.js';

/** Loads a model folder (tiny-sd by default) before the suite's tests and releases it after; call the returned function inside tests. */
export function withModel(s: ReturnType<typeof suite>, dir: string = TINY_SD, options: Partial<LoadOptions> = {}): () => ModelBundle {
  let bundle: ModelBundle | undefined;
  s.before(async () => {
    bundle = await loadModel(dir, { device: 'cpu', ...options });
  });
  s.after(async () => {
    await bundle?.release();
  });
  return () => {
    if (!bundle) throw new Error('the model is loaded in the suite`s before hook');
    return bundle;
  };
}

/** A small txt2img request on tiny-sd's native size, for tests that vary one thing. */
export function tinyRequest(overrides: Partial<GenerationRequest> = {}): GenerationRequest {
  return {
    prompt: 'a fox in the snow',
    negativePrompt: '',
    steps: 3,
    cfgScale: 7,
    cfgRescale: 0,
    seed: 11,
    rng: 'cpu',
    seedMode: 'a1111',
    sampler: 'euler',
    schedule: 'normal',
    width: 32,
    height: 32,
    batchSize: 1,
    ...overrides,
  };
}
