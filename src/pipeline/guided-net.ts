import { withoutExtraNetworks } from '../text/extra-networks.js';
import { padCondUncond } from '../text/prompt-pad.js';
import { parkTextEncoders, type ModelBundle } from './bundle.js';
import { encodeConditioning, zeroedConditioning } from './conditioning.js';
import { DeepCacheSchedule } from './deep-cache.js';
import { applyGuidance } from './guidance.js';
import { guidanceCondition } from './lcm.js';
import { timeIds } from './micro-conditioning.js';
import type { ControlStep } from './control.js';
import type { Conditioning } from './text-encoder.js';
import type { PassRequest } from './types.js';

/**
 * One model's network as the loop calls it: the model input (already carrying any extra UNet
 * channels), the timestep and the denoiser call's number (prompt editing's clock) in, the guided
 * prediction out.
 */
export type GuidedNet = (sample: Float32Array, t: number, call: number) => Promise<Float32Array>;

/**
 * Encodes the request's prompts for this model and returns its guided network: classifier-free
 * guidance over the prompt and negative prompt (one batched UNet call where both have as many
 * tokens, else two, as A1111 does by default), or the prompt alone for LCM-distilled UNets (the
 * guidance scale as an embedding) and CFG scales of 1 or less. The text encoders are parked once
 * the prompts are encoded. ControlNet residuals (control) are computed for each UNet call on the
 * same batch and conditioning.
 */
export async function guidedNet(
  bundle: ModelBundle,
  request: PassRequest,
  calls: number,
  latentSize: readonly [number, number],
  control?: ControlStep,
): Promise<GuidedNet> {
  const batch = request.batchSize;
  const timestepCond = guidanceCondition(bundle.unet, request.cfgScale, batch);
  const guided = !timestepCond && request.cfgScale > 1;
  const weighting = request.promptWeighting ?? 'a1111';
  const ids = (negative: boolean) => (bundle.unet.added ? timeIds(bundle.unet.added.timeIds, request, negative) : undefined);
  // `<lora:…>`-style tags chose the networks when the model loaded; A1111 encodes the prompt without them.
  // A hires fix's second pass: prompt editing counts on from the first pass.
  const firstPass = request.latentInit?.firstPassSteps;
  const cond = await encodeConditioning(bundle, withoutExtraNetworks(request.prompt), calls, weighting, ids(false), firstPass);
  // SDXL base: an empty negative prompt conditions on zeros (diffusers' force_zeros_for_empty_prompt, A1111's force_zero_negative_prompt).
  const zeroNegative = bundle.sdxl?.forceZerosForEmptyPrompt === true && request.negativePrompt === '';
  const uncond = !guided ? undefined : zeroNegative ? zeroedConditioning(cond, ids(true)!) : await encodeConditioning(bundle, request.negativePrompt, calls, weighting, ids(true), firstPass);
  const padding = request.condPadding ?? 'none';
  const emptyPrompt = uncond && padding === 'empty-chunks' ? (await encodeConditioning(bundle, '', calls, weighting, ids(true))).at(0).data : new Float32Array(0);
  await parkTextEncoders(bundle);
  const deepCache = (request.deepCache ?? 1) > 1 ? new DeepCacheSchedule(request.deepCache!) : undefined;

  /** One UNet call on groups of `batch` images, each group conditioned on one prompt (uncond: whether it is the negative one). */
  const predict = async (sample: Float32Array, t: number, call: number, contexts: Conditioning[], uncond: boolean[]): Promise<Float32Array> => {
    const context = batchContext(contexts, batch);
    const n = contexts.length * batch;
    // Latent channels, plus the mask and masked image (inpainting UNets) or the depth (depth UNets).
    const channels = sample.length / (n * latentSize[0] * latentSize[1]);
    const dims = [n, channels, ...latentSize] as const;
    const contextDims = [n, context.tokens, context.width] as const;
    const residuals = control && (await control(sample, dims, t, call, context.data, contextDims, uncond, context.added));
    // Each way of batching the prompts is its own group of features: [negative, prompt], or each alone.
    const cache = deepCache?.use(call, uncond.join());
    return bundle.unet.predict(sample, dims, t, context.data, contextDims, timestepCond, context.added, residuals, cache);
  };
  const padded = (u: Conditioning, c: Conditioning): [Conditioning, Conditioning] => {
    if (padding === 'none' || u.tokens === c.tokens) return [u, c];
    const both = padCondUncond(c.data, u.data, c.width, padding, emptyPrompt);
    return [
      { ...u, data: both.uncond, tokens: both.uncond.length / u.width },
      { ...c, data: both.cond, tokens: both.cond.length / c.width },
    ];
  };
  return async (sample, t, call) => {
    const c = cond.at(call);
    const u0 = uncond?.at(call);
    if (!u0) return predict(sample, t, call, [c], [false]);
    const [u, cp] = padded(u0, c);
    const [outU, outC] =
      u.tokens === cp.tokens
        ? splitHalves(await predict(concat(sample, sample), t, call, [u, cp], [true, false]))
        : [await predict(sample, t, call, [u], [true]), await predict(sample, t, call, [cp], [false])];
    return applyGuidance(outU, outC, request.cfgScale, request.cfgRescale, batch);
  };
}

function splitHalves(out: Float32Array): [Float32Array, Float32Array] {
  const half = out.length / 2;
  return [out.subarray(0, half), out.subarray(half)];
}

/** [groups..., each repeated for every image of the batch], as diffusers lays out the UNet batch (SDXL's added conditioning too). */
function batchContext(groups: Conditioning[], batch: number): Conditioning {
  const first = groups[0]!;
  const repeated = (pick: (g: Conditioning) => Float32Array): Float32Array => {
    const size = pick(first).length;
    const out = new Float32Array(size * groups.length * batch);
    groups.forEach((g, gi) => {
      for (let b = 0; b < batch; b++) out.set(pick(g), (gi * batch + b) * size);
    });
    return out;
  };
  const added = first.added ? { textEmbeds: repeated((g) => g.added!.textEmbeds), timeIds: repeated((g) => g.added!.timeIds) } : undefined;
  return { data: repeated((g) => g.data), tokens: first.tokens, width: first.width, ...(added ? { added } : {}) };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
