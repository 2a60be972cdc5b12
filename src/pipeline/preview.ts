import { tensorToRasters } from '../image/tensor-image.js';
import type { Raster } from '../image/raster.js';
import { LATENT_RGB, latentToRgb } from './latent-rgb.js';
import type { PipelineEvent, PipelineListener } from './types.js';
import type { VaeDecoder } from './vae.js';

/**
 * Live previews while sampling: every `every` steps the denoiser's current x0 estimate of the
 * batch's first image is turned into a picture, by TAESD's decoder (full size) or, without one,
 * by ComfyUI's latent-to-RGB factors (one pixel per latent). Decoding runs beside the sampling
 * loop and never holds it up: while one preview decodes, a newer step replaces any waiting one
 * (the latest wins, the ones between are skipped), so `finish()` waits for at most two.
 */

export interface PreviewOptions {
  every: number;
  /** TAESD's decoder, which reads the UNet's latents as they are (its scaling factor is 1). */
  decoder?: VaeDecoder;
  /** Which latent space the factors are for when there is no decoder. */
  latentFormat: keyof typeof LATENT_RGB;
  onImage(image: Raster, step: number, total: number): Promise<void>;
}

export interface Previewer {
  listener(next?: PipelineListener): PipelineListener;
  /** Waits for the previews still decoding; rejects with the first failure. */
  finish(): Promise<void>;
}

type StepEvent = Extract<PipelineEvent, { kind: 'step' }>;
interface Frame {
  latents: Float32Array;
  dims: readonly [number, number, number];
  step: number;
  total: number;
}

export function previewer(options: PreviewOptions): Previewer {
  let running: Promise<void> | undefined;
  let waiting: Frame | undefined;
  let failure: unknown;

  const render = async (frame: Frame): Promise<Raster> => {
    if (!options.decoder) return latentToRgb(frame.latents, frame.dims, LATENT_RGB[options.latentFormat]);
    const out = await options.decoder.decode(frame.latents, frame.dims);
    return tensorToRasters(out.data, [1, 3, out.height, out.width])[0]!;
  };
  const start = (frame: Frame): void => {
    running = (async () => {
      try {
        await options.onImage(await render(frame), frame.step, frame.total);
      } catch (err) {
        failure ??= err;
      }
      running = undefined;
      const next = waiting;
      waiting = undefined;
      if (next && failure === undefined) start(next);
    })();
  };
  const take = (event: StepEvent): void => {
    if (event.step % options.every !== 0 || failure !== undefined) return;
    const perImage = event.latentDims[0] * event.latentDims[1] * event.latentDims[2];
    // Copied: the sampler owns the array after the event.
    const frame = { latents: event.denoised.slice(0, perImage), dims: event.latentDims, step: event.step, total: event.total };
    if (running) waiting = frame;
    else start(frame);
  };
  return {
    listener: (next) => (event) => {
      if (event.kind === 'step') take(event);
      next?.(event);
    },
    finish: async () => {
      while (running) await running;
      if (failure !== undefined) throw failure;
    },
  };
}
