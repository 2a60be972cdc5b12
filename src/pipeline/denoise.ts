import { UsageError } from '../errors.js';
import { modelCalls, planSampling } from '../schedulers/index.js';
import { tensorToRasters } from '../image/tensor-image.js';
import type { ModelBundle } from './bundle.js';
import { guidedNet } from './guided-net.js';
import { controlStep } from './control.js';
import { refinerStage } from './tasks/refiner.js';
import { batchNoise, samplerNoise } from './noise.js';
import { imageSeed } from './seeds.js';
import { blendKept, keptRegion } from './kept-region.js';
import { applyOverlay } from '../image/composite.js';
import { startingPoint } from './start.js';
import { tiledDecode } from './vae-tiling.js';
import type { Raster } from '../image/raster.js';
import type { PassRequest, PipelineListener, Timings } from './types.js';

/** What one pass made: the pictures of the batch and their seeds, the latents they were decoded from. */
export interface PassResult {
  images: { image: Raster; seed: number }[];
  /** Final latents [batch, C, h, w] as handed to the VAE decoder (before the scaling factor). */
  latents: Float32Array;
  timings: Timings;
}

/**
 * The one denoising loop: prompt → conditioning → noise → sampler loop over the UNet → VAE
 * decode → RGB, for one pass of one batch. Every task (src/pipeline/tasks/) is one or more of
 * these passes; nothing else denoises.
 */
export async function denoisePass(bundle: ModelBundle, request: PassRequest, listener: PipelineListener = () => {}): Promise<PassResult> {
  const started = performance.now();
  const { files } = bundle;
  const ratio = files.vaeScaleFactor;
  const batch = request.batchSize;
  const latentDims = [files.latentChannels, request.height / ratio, request.width / ratio] as const;
  const perImage = latentDims[0] * latentDims[1] * latentDims[2];

  listener({ kind: 'stage', stage: 'encode' });
  const refiner = refinerStage(bundle, request);
  // Prompt editing runs on the clock of denoiser calls, as A1111's.
  const calls = modelCalls(request.sampler, request.steps);
  const plan = planSampling({
    model: bundle.schedule,
    sampler: request.sampler,
    schedule: request.schedule,
    steps: request.steps,
    discardPenultimateSigma: request.discardPenultimateSigma ?? false,
    ...(request.noiseTable ? { noiseTable: request.noiseTable } : {}),
    ...(request.init ? { strength: request.init.strength, ...(request.init.strengthMode ? { strengthMode: request.init.strengthMode } : {}) } : {}),
    ...(request.latentInit ? { strength: request.latentInit.strength, strengthMode: 'a1111-fixed' as const } : {}),
  });
  const latentSize = [latentDims[1], latentDims[2]] as const;
  const baseNet = await guidedNet(bundle, request, calls, latentSize, controlStep(bundle, request, plan.calls));
  // No control step for the refiner: as in A1111, where sd-webui-controlnet hooks the base model's UNet and the
  // switch loads the refiner as another model, the units steer the base's steps only (start/end stay fractions of all).
  const refinerNet = refiner && (await guidedNet(refiner.bundle, request, calls, latentSize));
  const encodedAt = performance.now();
  const noise = batchNoise(request, latentDims);
  const initial = request.initialLatents?.values;
  if (initial && initial.length !== perImage * batch) {
    throw new UsageError(`initial latents have ${initial.length} values; expected ${perImage * batch} (${batch}x${latentDims.join('x')})`);
  }
  const start = await startingPoint(bundle, request, plan, noise, latentDims);

  let call = 0;
  let refining = false;
  const net = async (xIn: Float32Array, t: number, sigma: number): Promise<Float32Array> => {
    const withExtra = start.extraChannels ? interleaveChannels(xIn, start.extraChannels, batch) : xIn;
    refining ||= refiner?.switchesAt(sigma) ?? false;
    return (refining ? refinerNet! : baseNet)(withExtra, t, call++);
  };
  listener({ kind: 'stage', stage: 'denoise' });
  const total = plan.sigmas.length - 1;
  const keep = start.keep && start.image ? { image: start.image, keep: start.keep } : undefined;
  const denoiser = keptRegion(plan.denoiser(net, batch), keep);
  // Strength 0 runs no step: the result is the init image's VAE round trip.
  const latents =
    request.init?.strength === 0 && start.image
      ? start.image
      : scaled(
          await plan.sampler(denoiser, start.x, plan.sigmas, {
            noise: samplerNoise(request, plan.sigmas, latentDims, noise.batch),
            ...(request.eta !== undefined ? { eta: request.eta } : {}),
            onStep: (info) => listener({ kind: 'step', step: info.step + 1, total, denoised: info.denoised, latentDims }),
          }),
          plan.finalScale,
        );
  const final = keep ? blendKept(latents, keep) : latents;
  const denoisedAt = performance.now();

  const images: PassResult['images'] = [];
  if (request.latentsOnly) return { images, latents: final, timings: timings(started, encodedAt, denoisedAt, denoisedAt) };
  listener({ kind: 'stage', stage: 'decode' });
  if (request.vaeTiling && bundle.vae?.tiny) throw new UsageError('--vae-tiling does not apply to TAESD (it decodes a 1024x1024 image in well under a gigabyte); leave it out');
  // After a refiner switch the refiner's VAE decodes (with its own scale), as in A1111 (the refiner is then the loaded model) and diffusers.
  const { vaeDecoder, vaeScale } = refining ? refiner!.bundle : bundle;
  const invScale = Math.fround(vaeScale);
  for (let b = 0; b < batch; b++) {
    const slice = final.subarray(b * perImage, (b + 1) * perImage);
    const unscaled = new Float32Array(perImage);
    for (let i = 0; i < perImage; i++) unscaled[i] = slice[i]! / invScale;
    const decoded = request.vaeTiling
      ? await tiledDecode(vaeDecoder, unscaled, latentDims, { latent: files.vaeSampleSize / ratio, sample: files.vaeSampleSize, overlap: 0.25 })
      : await vaeDecoder.decode(unscaled, latentDims);
    const raster = tensorToRasters(decoded.data, [1, 3, decoded.height, decoded.width])[0]!;
    images.push({ image: request.init && request.mask?.overlay ? applyOverlay(request.init.image, raster, request.mask.overlay) : raster, seed: imageSeed(request, b) });
  }
  return { images, latents: final, timings: timings(started, encodedAt, denoisedAt, performance.now()) };
}

function timings(started: number, encodedAt: number, denoisedAt: number, done: number): Timings {
  return { textEncoder: encodedAt - started, denoise: denoisedAt - encodedAt, vaeDecode: done - denoisedAt, total: done - started };
}

/** [batch, C, h, w] latents and [batch, E, h, w] extra channels → [batch, C + E, h, w]. */
function interleaveChannels(x: Float32Array, extra: Float32Array, batch: number): Float32Array {
  const a = x.length / batch;
  const e = extra.length / batch;
  const out = new Float32Array(x.length + extra.length);
  for (let b = 0; b < batch; b++) {
    out.set(x.subarray(b * a, (b + 1) * a), b * (a + e));
    out.set(extra.subarray(b * e, (b + 1) * e), b * (a + e) + a);
  }
  return out;
}

function scaled(x: Float32Array, factor: number): Float32Array {
  if (factor === 1) return x;
  const f = Math.fround(factor);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * f;
  return out;
}
