import { UsageError } from '../errors.js';
import { planInversion } from '../schedulers/index.js';
import type { ModelBundle } from './bundle.js';
import { guidedNet } from './guided-net.js';
import { encodeImage, imagePixels } from './image-latents.js';
import { batchNoise } from './noise.js';
import { withoutTasks } from './tasks/inpaint.js';
import type { GenerationRequest, PipelineListener } from './types.js';

/** What an inversion made: the noise DDIM (eta 0) maps back to the picture, and how long each stage took. */
export interface InversionResult {
  /** diffusers' latents [1, C, h, w]: a pipeline's `latents=` argument (diffuse: GenerationRequest.initialLatents). */
  latents: Float32Array;
  dims: readonly [number, number, number, number];
  timings: { textEncoder: number; encode: number; invert: number; total: number };
}

/**
 * DDIM inversion of the request's init picture, as diffusers' StableDiffusionDiffEditPipeline.invert
 * with its regularisation off and inpaint_strength 1: the picture's VAE latents (sample or mean, as
 * img2img encodes them, drawn with the seed), then DDIMInverseScheduler's steps up through every
 * timestep, the network guided by the prompt as in generation (no CFG at a scale of 1 or less).
 * The same prompt, steps and scale sampled with DDIM from the result paint the picture again.
 */
export async function invertImage(bundle: ModelBundle, request: GenerationRequest, listener: PipelineListener = () => {}): Promise<InversionResult> {
  const { init } = request;
  if (!init) throw new UsageError('DDIM inversion needs the picture to invert (the request has no init image)');
  if (request.batchSize !== 1) throw new UsageError('DDIM inversion inverts one picture: use a batch size of 1');
  if (request.control?.length || request.mask || request.outpaint || request.depth || request.refinerSwitch !== undefined) {
    throw new UsageError('DDIM inversion takes a picture and a prompt only: leave out masks, outpainting, depth, ControlNet and the refiner');
  }
  if (bundle.unet.inChannels !== undefined && bundle.unet.inChannels !== bundle.files.latentChannels) {
    throw new UsageError(`DDIM inversion needs a plain UNet; this model's takes ${bundle.unet.inChannels} input channels (an inpainting or depth model)`);
  }
  const started = performance.now();
  const ratio = bundle.files.vaeScaleFactor;
  const dims = [1, bundle.files.latentChannels, request.height / ratio, request.width / ratio] as const;
  const plan = planInversion(bundle.schedule.config, request.steps);

  listener({ kind: 'stage', stage: 'encode' });
  const net = await guidedNet(bundle, withoutTasks(request), request.steps, [dims[2], dims[3]]);
  const encodedAt = performance.now();
  const noise = batchNoise(request, [dims[1], dims[2], dims[3]]);
  const clean = await encodeImage(bundle, imagePixels(init.image), request.height, request.width, init.latents, noise.single);
  const latentAt = performance.now();

  listener({ kind: 'stage', stage: 'denoise' });
  let call = 0;
  const denoiser = plan.denoiser((x, t) => net(x, t, call++), 1);
  const total = plan.sigmas.length - 1;
  const latents = await plan.sampler(denoiser, clean, plan.sigmas, {
    noise: () => {
      throw new Error('DDIM inversion draws no noise');
    },
    onStep: (info) => listener({ kind: 'step', step: info.step + 1, total, denoised: info.denoised, latentDims: [dims[1], dims[2], dims[3]] }),
  });
  const done = performance.now();
  return { latents, dims, timings: { textEncoder: encodedAt - started, encode: latentAt - encodedAt, invert: done - latentAt, total: done - started } };
}
