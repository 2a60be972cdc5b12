/**
 * ComfyUI's uni_pc and uni_pc_bh2 (comfy/extra_samplers/uni_pc.py, sample_unipc): the same UniPC
 * loop as diffusers' (vp-unipc.ts) with other settings, walking any sigma schedule:
 * - variant bh1 (uni_pc) or bh2 (uni_pc_bh2), order min(3, steps - 1) instead of 2;
 * - a final sigma 0 becomes 0.001 and the result stays there (no step to x0), returned in sigma
 *   space like any k-diffusion sampler (so no VP final-latents convention applies);
 * - the VP latents and alpha, sigma and lambda of its float32 SigmaConvert, whose 1 - exp(...)
 *   cancellation at small sigmas is emulated here op by op (in float64 the results drift past
 *   1e-5 relative from ComfyUI's).
 */
import type { Latents, Sampler } from './types.js';
import { runUniPc, type UniPcSpace, type UniPcVariant } from './vp-unipc.js';

const f32 = Math.fround;

/** Where ComfyUI ends a walk that ends at 0 (float32 0.001). */
const FINAL_SIGMA = f32(0.001);

/** SigmaConvert.marginal_log_mean_coeff: 0.5 * log(1 / (sigma² + 1)), float32 tensor ops. */
function logMeanCoeff(sigma: number): number {
  return f32(0.5 * f32(Math.log(f32(1 / f32(f32(sigma * sigma) + 1)))));
}

/** 1 - alpha² as SigmaConvert computes it: 1 - exp(2 * log_mean_coeff). */
function oneMinusAlphaSquared(sigma: number): number {
  return f32(1 - f32(Math.exp(f32(2 * logMeanCoeff(sigma)))));
}

const alphaOf = (sigma: number) => f32(Math.exp(logMeanCoeff(sigma)));
const stdOf = (sigma: number) => f32(Math.sqrt(oneMinusAlphaSquared(sigma)));

const COMFY_SPACE: UniPcSpace = {
  lambda: (sigma) => f32(logMeanCoeff(sigma) - f32(0.5 * f32(Math.log(oneMinusAlphaSquared(sigma))))),
  ratio: (sigmaS0, sigmaT) => f32(stdOf(sigmaT) / stdOf(sigmaS0)),
  alpha: alphaOf,
};

function comfyUniPc(variant: UniPcVariant): Sampler {
  return async (denoise, x, sigmas, options) => {
    const steps = sigmas.length - 1;
    const walk = Float64Array.from(sigmas);
    if (!(walk[steps] > 0)) walk[steps] = FINAL_SIGMA;
    // x_vp: noise / sqrt(1 + sigma_0²) in float32.
    const startScale = f32(Math.sqrt(f32(1 + f32(walk[0] * walk[0]))));
    const start = Float64Array.from(x, (v) => f32(v / startScale));
    const toSigmaSpace = (state: Float64Array, sigma: number): Latents => {
      const alpha = alphaOf(sigma);
      return Float32Array.from(state, (v) => v / alpha);
    };
    const result = await runUniPc(
      {
        space: COMFY_SPACE,
        variant,
        order: Math.min(3, steps - 1),
        // predict_eps_sigma, then data_prediction_fn: x0 back through SigmaConvert's alpha and sigma.
        evaluate: async (state, sigma) => {
          const inScale = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
          const xIn = Float32Array.from(state, (v) => v * inScale);
          const x0 = await denoise(xIn, sigma);
          const alpha = alphaOf(sigma);
          const std = stdOf(sigma);
          return Float32Array.from(state, (v, k) => (v - std * ((xIn[k] - x0[k]) / sigma)) / alpha);
        },
        onStep: (step, state, denoised) =>
          options.onStep?.({ step, total: steps, sigma: sigmas[step], x: toSigmaSpace(state, walk[step + 1]), denoised }),
      },
      start,
      walk,
    );
    return toSigmaSpace(result, walk[steps]);
  };
}

/** ComfyUI's uni_pc (bh1). */
export const comfyUniPcBh1: Sampler = comfyUniPc('bh1');

/** ComfyUI's uni_pc_bh2. */
export const comfyUniPcBh2: Sampler = comfyUniPc('bh2');
