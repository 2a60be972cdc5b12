import { UsageError } from '../../errors.js';
import type { ModelBundle } from '../bundle.js';
import type { PassRequest } from '../types.js';

/** A1111's "Switch at" default. */
export const DEFAULT_REFINER_SWITCH = 0.8;

/** The model that takes the loop over, and when. */
export interface RefinerStage {
  bundle: ModelBundle;
  /** Whether the denoiser call at this sigma belongs to the refiner (once true, every later call does too). */
  switchesAt(sigma: number): boolean;
}

/**
 * The SDXL refiner as A1111 runs it: the same sampler loop continues with the refiner's UNet and
 * conditioning (its own text encoder, aesthetic-score time ids) from the switch on, keeping the
 * sampler's state, and the refiner's VAE decodes. diffusers' denoising_end/denoising_start splits
 * the same timesteps between two pipelines but restarts the scheduler's state, which differs for
 * multistep samplers; for single-step ones the two agree.
 */
export function refinerStage(bundle: ModelBundle, request: Pick<PassRequest, 'refinerSwitch'>): RefinerStage | undefined {
  if (request.refinerSwitch === undefined) return undefined;
  const refiner = bundle.refiner;
  if (!refiner) throw new UsageError('a refiner switch needs a refiner model: pass --refiner with an SDXL refiner');
  if (bundle.unet.inChannels !== undefined && bundle.unet.inChannels !== bundle.files.latentChannels) {
    throw new UsageError(`the refiner continues plain latents; this model's UNet takes ${bundle.unet.inChannels} input channels (inpainting or depth), which cannot hand over to it: leave out --refiner`);
  }
  if (refiner.files.latentChannels !== bundle.files.latentChannels || refiner.files.vaeScaleFactor !== bundle.files.vaeScaleFactor) {
    throw new UsageError(`the refiner ${refiner.name} has other latents than ${bundle.name} (${refiner.files.latentChannels} channels, 1/${refiner.files.vaeScaleFactor} scale): use the refiner of this model family`);
  }
  return { bundle: refiner, switchesAt: refinerSwitch(bundle.schedule.sigmas, request.refinerSwitch) };
}

/**
 * A1111's rule (sd_samplers_common.apply_refiner, switching by sigma, its default): the call's
 * sigma is matched to the nearest training sigma's timestep t, and the refiner runs from the first
 * call where the completed ratio (999 - t) / 1000, a float32 tensor there, is not below the switch.
 * With integer timesteps that is diffusers' denoising_end split: t < round(1000 × (1 - switch)).
 */
export function refinerSwitch(trainingSigmas: Float64Array, switchAt: number): (sigma: number) => boolean {
  const at = Math.fround(switchAt);
  return (sigma) => !(Math.fround((999 - nearestIndex(trainingSigmas, sigma)) / 1000) < at);
}

/** torch.argmin(|sigmas - sigma|) over ascending sigmas: the first index of the smallest distance, compared in float32 as A1111's table is. */
function nearestIndex(sigmas: Float64Array, sigma: number): number {
  const s = Math.fround(sigma);
  let lo = 0;
  let hi = sigmas.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (Math.fround(sigmas[mid]!) < s) lo = mid + 1;
    else hi = mid;
  }
  if (lo === 0) return 0;
  const below = Math.fround(s - Math.fround(sigmas[lo - 1]!));
  const above = Math.fround(Math.fround(sigmas[lo]!) - s);
  return below <= above ? lo - 1 : lo;
}
