/**
 * diffusers' PNDMScheduler: pseudo linear multistep (PLMS) steps on the network's raw outputs,
 * warmed up either by one pseudo-Heun step (skip_prk_steps=True, what Stable Diffusion ships) or
 * by three pseudo-Runge-Kutta steps (skip_prk_steps=False, the PNDM paper's method).
 *
 * The UNet is called more often than there are steps: steps + 1 times with the Heun warm-up
 * (diffusers repeats the second timestep: 901, 801, 801, 701, ...), steps + 9 times with the RK
 * warm-up (four calls for each of the first three steps).
 */
import type { Denoiser, DiscreteSchedule, Latents, Sampler, SamplerOptions } from './types.js';
import {
  type VpPoint,
  ddimTarget,
  diffusersStride,
  fromVp,
  isOnGrid,
  networkOutput,
  pointAtSigma,
  pointAtTimestep,
  toVp,
  vpResult,
} from './vp-grid.js';

/**
 * PNDMScheduler._get_prev_sample: the DDIM step from `from` to `to` for a (combined) network
 * output, converted from v to eps with the sample and alpha of `from` as diffusers does.
 */
function prevSample(model: DiscreteSchedule, sample: Float64Array, from: VpPoint, to: VpPoint, output: Float64Array): Float64Array {
  const aT = from.alpha;
  const aPrev = to.alpha;
  const sampleCoeff = Math.sqrt(aPrev / aT);
  const denom = aT * Math.sqrt(1 - aPrev) + Math.sqrt(aT * (1 - aT) * aPrev);
  const outputCoeff = (aPrev - aT) / denom;
  const isV = model.predictionType === 'v_prediction';
  const sqrtA = Math.sqrt(aT);
  const sqrtB = Math.sqrt(1 - aT);
  const out = new Float64Array(sample.length);
  for (let k = 0; k < out.length; k++) {
    const eps = isV ? sqrtA * output[k] + sqrtB * sample[k] : output[k];
    out[k] = sampleCoeff * sample[k] - outputCoeff * eps;
  }
  return out;
}

/** The linear multistep combination of the last (up to four) network outputs, newest last. */
function multistep(ets: Float64Array[]): Float64Array {
  const e = (back: number) => ets[ets.length - back];
  const weights: [number, Float64Array][] =
    ets.length === 1
      ? [[1, e(1)]]
      : ets.length === 2
        ? [[3 / 2, e(1)], [-1 / 2, e(2)]]
        : ets.length === 3
          ? [[23 / 12, e(1)], [-16 / 12, e(2)], [5 / 12, e(3)]]
          : [[55 / 24, e(1)], [-59 / 24, e(2)], [37 / 24, e(3)], [-9 / 24, e(4)]];
  const out = new Float64Array(ets[0].length);
  for (const [w, v] of weights) for (let k = 0; k < out.length; k++) out[k] += w * v[k];
  return out;
}

function mean(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, k) => (v + b[k]) / 2);
}

interface Evaluation {
  output: Float64Array;
  x0: Latents;
}

/** Calls the denoiser on VP latents at a point and recovers what the network output. */
async function evaluate(denoise: Denoiser, model: DiscreteSchedule, xvp: Float64Array, at: VpPoint): Promise<Evaluation> {
  const x = fromVp(xvp, at.sigma);
  const x0 = await denoise(x, at.sigma);
  return { output: networkOutput(model, x, at.sigma, x0), x0 };
}

/**
 * One pseudo-RK4 step from `from` to `to` (PNDMScheduler.step_prk, four calls). Every stage steps
 * from the starting sample; the midpoint is t_next + stride // 2 on diffusers' grid (the
 * continuous midpoint in t otherwise), and the first stage lands on t - stride // 2, which is that
 * midpoint unless the stride is odd.
 */
async function rungeKuttaStep(
  denoise: Denoiser,
  model: DiscreteSchedule,
  xvp: Float64Array,
  from: VpPoint,
  to: VpPoint,
  stride: number | undefined,
): Promise<{ xvp: Float64Array; first: Evaluation }> {
  const half = stride !== undefined && isOnGrid(from) && isOnGrid(to) ? Math.floor(stride / 2) : undefined;
  const mid = pointAtTimestep(model, half !== undefined ? to.t + half : (from.t + to.t) / 2);
  const firstTarget = half !== undefined ? pointAtTimestep(model, from.t - half) : mid;

  const first = await evaluate(denoise, model, xvp, from);
  const acc = first.output.map((v) => v / 6);
  let x = prevSample(model, xvp, from, firstTarget, first.output);
  const second = await evaluate(denoise, model, x, mid);
  for (let k = 0; k < acc.length; k++) acc[k] += second.output[k] / 3;
  x = prevSample(model, xvp, from, mid, second.output);
  const third = await evaluate(denoise, model, x, mid);
  for (let k = 0; k < acc.length; k++) acc[k] += third.output[k] / 3;
  x = prevSample(model, xvp, from, to, third.output);
  const fourth = await evaluate(denoise, model, x, to);
  for (let k = 0; k < acc.length; k++) acc[k] += fourth.output[k] / 6;
  return { xvp: prevSample(model, xvp, from, to, acc), first };
}

function pndmSampler(rungeKuttaWarmup: boolean): Sampler {
  return async (denoise: Denoiser, x: Latents, sigmas: Float64Array, options: SamplerOptions) => {
    const { model } = denoise;
    const steps = sigmas.length - 1;
    if (rungeKuttaWarmup && steps < 4) throw new Error(`PNDM with Runge-Kutta warm-up needs at least 4 steps, got ${steps}`);
    const stride = diffusersStride(denoise);
    const points = Array.from(sigmas, (s) => pointAtSigma(model, s));
    let xvp = toVp(x, sigmas[0]);
    // diffusers' cur_sample: the pseudo-Heun warm-up redoes the first step from here.
    const firstSample = xvp;
    const ets: Float64Array[] = [];
    for (let i = 0; i < steps; i++) {
      const here = points[i];
      const target = ddimTarget(model, sigmas, i, stride);
      let denoised: Latents;
      if (rungeKuttaWarmup && i < 3) {
        const step = await rungeKuttaStep(denoise, model, xvp, here, points[i + 1], stride);
        ets.push(step.first.output);
        denoised = step.first.x0;
        xvp = step.xvp;
      } else {
        let e = await evaluate(denoise, model, xvp, here);
        if (!rungeKuttaWarmup && i === 1) {
          // Pseudo-Heun: redo the first step with the mean of both outputs, from t_1 + stride
          // (diffusers' arithmetic, which is t_0 except for uneven trailing/linspace spacing),
          // then evaluate again at the same timestep. Only that second output enters the history.
          const above = stride !== undefined && isOnGrid(here) ? pointAtTimestep(model, here.t + stride) : points[0];
          xvp = prevSample(model, firstSample, above, here, mean(e.output, ets[0]));
          if (denoise.grid?.cut) {
            // diffusers' img2img cut (see planSampling's pndmCut): its list has no second call at this
            // timestep, so the corrected sample is next read at the following timestep, one level early.
            options.onStep?.({ step: i, total: steps, sigma: sigmas[i], x: vpResult(xvp, sigmas[i]), denoised: e.x0 });
            continue;
          }
          e = await evaluate(denoise, model, xvp, here);
        }
        ets.push(e.output);
        if (ets.length > 4) ets.shift();
        denoised = e.x0;
        xvp = prevSample(model, xvp, here, target, multistep(ets));
      }
      options.onStep?.({ step: i, total: steps, sigma: sigmas[i], x: vpResult(xvp, sigmas[i + 1]), denoised });
    }
    return vpResult(xvp, sigmas[steps]);
  };
}

/** PNDMScheduler with skip_prk_steps=True (Stable Diffusion's scheduler_config): PLMS. */
export const pndm: Sampler = pndmSampler(false);

/** PNDMScheduler with skip_prk_steps=False: three pseudo-RK4 steps, then PLMS; needs >= 4 steps. */
export const pndmPrk: Sampler = pndmSampler(true);
