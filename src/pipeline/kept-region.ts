import { wrapDenoiser, type Denoiser } from '../schedulers/index.js';

/** The init image's latents and, per latent pixel, 1 where they are kept. */
export interface KeptRegion {
  image: Float32Array;
  keep: Float32Array;
}

/**
 * Inpainting with an ordinary UNet, as AUTOMATIC1111 does it for every sampler: each x0
 * estimate is replaced by the init image where the mask keeps it, so the sampler steers the
 * repainted area towards a picture that agrees with the kept one. (diffusers instead re-noises
 * the kept area into the latents after each step; that needs a hook inside every sampler.)
 */
export function keptRegion(denoise: Denoiser, region: KeptRegion | undefined): Denoiser {
  if (!region) return denoise;
  return wrapDenoiser(denoise, async (x, sigma) => blendKept(await denoise(x, sigma), region));
}

export function blendKept(latents: Float32Array, { image, keep }: KeptRegion): Float32Array {
  const plane = keep.length;
  return latents.map((v, i) => {
    const k = keep[i % plane]!;
    return k === 1 ? image[i]! : k === 0 ? v : image[i]! * k + v * (1 - k);
  });
}
