import type * as ort from 'onnxruntime-node';

/**
 * Where one UNet call stands in DeepCache's schedule: whether it reuses the cached deep feature
 * (a shallow call) and the features of its group (keyed by the batch slice a fixed-batch graph
 * runs), which a full call refreshes.
 */
export interface DeepCacheUse {
  reuse: boolean;
  features: Map<number, ort.Tensor>;
}

/**
 * DeepCache's uniform schedule over one pass (DeepCacheSDHelper, skip_mode 'uniform'): the calls
 * whose number since the pass's first is a multiple of the interval run the whole UNet, the others
 * its shallow layers. The helper counts the position of the call's timestep in the scheduler's
 * list, which for diffusers' one-call-per-step schedulers is the call number; here the denoiser's
 * calls are counted for every sampler. Each group of a CFG step that the UNet runs separately
 * (prompt and negative prompt of different lengths) keeps its own feature; a group that has none
 * yet (a refiner taking over mid-pass) runs whole.
 */
export class DeepCacheSchedule {
  private readonly groups = new Map<string, Map<number, ort.Tensor>>();

  constructor(readonly interval: number) {}

  use(call: number, group: string): DeepCacheUse {
    const features = this.groups.get(group) ?? new Map<number, ort.Tensor>();
    this.groups.set(group, features);
    return { reuse: call % this.interval !== 0 && features.size > 0, features };
  }
}
