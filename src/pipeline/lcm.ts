import { guidanceScaleEmbedding } from './guidance-embedding.js';
import type { Unet } from './unet.js';

/**
 * What an LCM-distilled UNet takes instead of classifier-free guidance: its `timestep_cond`,
 * built as LatentConsistencyModelPipeline does — the embedding of w = cfgScale - 1 (the model
 * learned the "1 +" of the Imagen CFG formula), one row per image — or undefined for a UNet
 * without that input, which is then guided the ordinary way.
 */
export function guidanceCondition(unet: Pick<Unet, 'timestepCondDim'>, cfgScale: number, batch: number): Float32Array | undefined {
  if (unet.timestepCondDim === undefined) return undefined;
  const row = guidanceScaleEmbedding(cfgScale - 1, unet.timestepCondDim);
  const out = new Float32Array(row.length * batch);
  for (let b = 0; b < batch; b++) out.set(row, b * row.length);
  return out;
}
