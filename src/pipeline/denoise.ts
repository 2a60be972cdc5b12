import { UsageError } from '../errors.js';
import { modelCalls, planSampling } from '../schedulers/index.js';
import { tensorToRasters } from '../image/tensor-image.js';
import type { Conditioning } from './text-encoder.js';
import { applyGuidance } from './guidance.js';
import { encodeConditioning } from './conditioning.js';
import { padCondUncond } from '../text/prompt-pad.js';
import { guidanceCondition } from './lcm.js';
import type { ModelBundle } from './bundle.js';
import { batchNoise, samplerNoise } from './noise.js';
import { imageSeed } from './seeds.js';
import { blendKept, keptRegion } from './kept-region.js';
import { overlay } from '../image/composite.js';
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
  // LCM-distilled UNets take the guidance scale as an embedding and run on the prompt alone.
  const timestepCond = guidanceCondition(bundle.unet, request.cfgScale, batch);
  const guided = !timestepCond && request.cfgScale > 1;
  const weighting = request.promptWeighting ?? 'a1111';
  // Prompt editing runs on the clock of denoiser calls, as A1111's.
  const calls = modelCalls(request.sampler, request.steps);
  const cond = await encodeConditioning(bundle, request.prompt, calls, weighting);
  const uncond = guided ? await encodeConditioning(bundle, request.negativePrompt, calls, weighting) : undefined;
  const padding = request.condPadding ?? 'none';
  const emptyPrompt = uncond && padding === 'empty-chunks' ? (await encodeConditioning(bundle, '', calls, weighting)).at(0).data : new Float32Array(0);
  await bundle.textEncoder.park();
  const encodedAt = performance.now();

  const plan = planSampling({
    model: bundle.schedule,
    sampler: request.sampler,
    schedule: request.schedule,
    steps: request.steps,
    discardPenultimateSigma: request.discardPenultimateSigma ?? false,
    ...(request.noiseTable ? { noiseTable: request.noiseTable } : {}),
    ...(request.init ? { strength: request.init.strength, ...(request.init.strengthMode ? { strengthMode: request.init.strengthMode } : {}) } : {}),
  });
  const noise = batchNoise(request, latentDims);
  if (request.initialNoise && request.initialNoise.length !== perImage * batch) {
    throw new UsageError(`initial latents have ${request.initialNoise.length} values; expected ${perImage * batch}`);
  }
  const start = await startingPoint(bundle, request, plan, noise, latentDims);

  const channels = latentDims[0] + (start.extraChannels ? start.extraChannels.length / batch / (latentDims[1] * latentDims[2]) : 0);
  const predict = (sample: Float32Array, t: number, contexts: Conditioning[]): Promise<Float32Array> => {
    const context = batchContext(contexts, batch);
    const n = contexts.length * batch;
    return bundle.unet.predict(sample, [n, channels, latentDims[1], latentDims[2]], t, context.data, [n, context.tokens, context.width], timestepCond);
  };
  const padded = (u: Conditioning, c: Conditioning): [Conditioning, Conditioning] => {
    if (padding === 'none' || u.tokens === c.tokens) return [u, c];
    const both = padCondUncond(c.data, u.data, c.width, padding, emptyPrompt);
    return [
      { data: both.uncond, tokens: both.uncond.length / u.width, width: u.width },
      { data: both.cond, tokens: both.cond.length / c.width, width: c.width },
    ];
  };
  let call = 0;
  const net = async (xIn: Float32Array, t: number): Promise<Float32Array> => {
    const c = cond.at(call);
    const u0 = uncond?.at(call);
    call++;
    const withExtra = start.extraChannels ? interleaveChannels(xIn, start.extraChannels, batch) : xIn;
    if (!u0) return predict(withExtra, t, [c]);
    const [u, cp] = padded(u0, c);
    // One batched call where both sides have as many tokens; else two calls, as A1111 does by default.
    const [outU, outC] =
      u.tokens === cp.tokens
        ? splitHalves(await predict(concat(withExtra, withExtra), t, [u, cp]))
        : [await predict(withExtra, t, [u]), await predict(withExtra, t, [cp])];
    return applyGuidance(outU, outC, request.cfgScale, request.cfgRescale, batch);
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
            onStep: (info) => listener({ kind: 'step', step: info.step + 1, total }),
          }),
          plan.finalScale,
        );
  const final = keep ? blendKept(latents, keep) : latents;
  const denoisedAt = performance.now();

  listener({ kind: 'stage', stage: 'decode' });
  const images: PassResult['images'] = [];
  const invScale = Math.fround(files.vaeScalingFactor);
  for (let b = 0; b < batch; b++) {
    const slice = final.subarray(b * perImage, (b + 1) * perImage);
    const unscaled = new Float32Array(perImage);
    for (let i = 0; i < perImage; i++) unscaled[i] = slice[i]! / invScale;
    const decoded = request.vaeTiling
      ? await tiledDecode(bundle.vaeDecoder, unscaled, latentDims, { latent: files.vaeSampleSize / ratio, sample: files.vaeSampleSize, overlap: 0.25 })
      : await bundle.vaeDecoder.decode(unscaled, latentDims);
    const raster = tensorToRasters(decoded.data, [1, 3, decoded.height, decoded.width])[0]!;
    images.push({ image: request.init && request.mask?.overlay ? overlay(request.init.image, raster, request.mask.overlay) : raster, seed: imageSeed(request, b) });
  }
  const done = performance.now();
  return {
    images,
    latents: final,
    timings: {
      textEncoder: encodedAt - started,
      denoise: denoisedAt - encodedAt,
      vaeDecode: done - denoisedAt,
      total: done - started,
    },
  };
}

function splitHalves(out: Float32Array): [Float32Array, Float32Array] {
  const half = out.length / 2;
  return [out.subarray(0, half), out.subarray(half)];
}

/** [groups..., each repeated for every image of the batch], as diffusers lays out the UNet batch. */
function batchContext(groups: Conditioning[], batch: number): Conditioning {
  const first = groups[0]!;
  const size = first.data.length;
  const data = new Float32Array(size * groups.length * batch);
  groups.forEach((g, gi) => {
    for (let b = 0; b < batch; b++) data.set(g.data, (gi * batch + b) * size);
  });
  return { data, tokens: first.tokens, width: first.width };
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

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function scaled(x: Float32Array, factor: number): Float32Array {
  if (factor === 1) return x;
  const f = Math.fround(factor);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * f;
  return out;
}
