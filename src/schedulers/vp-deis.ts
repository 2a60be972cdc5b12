/**
 * diffusers' DEISMultistepScheduler (algorithm "deis", solver "logrho", solver_order 2 — its
 * default). In sigma space rho_t = sigma_t / alpha_t is just sigma, and the VP update
 * x_t = alpha_t (x_s / alpha_s + c0 eps0 + c1 eps1) becomes x_t = x_s + c0 eps0 + c1 eps1: an
 * Adams-Bashforth step on eps, integrated exactly in log-sigma.
 */
import type { Sampler } from './types.js';
import { toVp } from './vp-grid.js';

/** diffusers drops to first order near the end only for short runs. */
const LOWER_ORDER_FINAL_BELOW = 15;

/** The integral term of DEIS's 2nd-order log-rho coefficients (ind_fn). */
function indFn(t: number, b: number, c: number): number {
  return (t * (-Math.log(c) + Math.log(t) - 1)) / (Math.log(b) - Math.log(c));
}

/**
 * A walk ending at 0 ends at the smallest training sigma instead (DEIS's sigma_last), and the
 * result is diffusers' VP latents there, alphas_cumprod[0] whatever set_alpha_to_one says.
 */
export const deis: Sampler = async (denoise, x, sigmas, options) => {
  const { model } = denoise;
  const steps = sigmas.length - 1;
  const walk = Float64Array.from(sigmas);
  if (!(walk[steps] > 0)) walk[steps] = model.sigmas[0];
  const result = (xs: Float64Array, sigmaNext: number): Float32Array =>
    Float32Array.from(sigmaNext > 0 ? xs : toVp(xs, walk[steps]));
  let xs = Float64Array.from(x);
  let epsPrev: Float64Array | undefined;
  for (let i = 0; i < steps; i++) {
    const sigmaS = walk[i];
    const sigmaT = walk[i + 1];
    const x0 = await denoise(Float32Array.from(xs), sigmaS);
    const eps = xs.map((v, k) => (v - x0[k]) / sigmaS);
    const lowerOrderFinal = i === steps - 1 && steps < LOWER_ORDER_FINAL_BELOW;
    const next = new Float64Array(xs.length);
    if (!epsPrev || lowerOrderFinal) {
      for (let k = 0; k < next.length; k++) next[k] = xs[k] - (sigmaS - sigmaT) * eps[k];
    } else {
      const sigmaS1 = walk[i - 1];
      const c0 = indFn(sigmaT, sigmaS, sigmaS1) - indFn(sigmaS, sigmaS, sigmaS1);
      const c1 = indFn(sigmaT, sigmaS1, sigmaS) - indFn(sigmaS, sigmaS1, sigmaS);
      for (let k = 0; k < next.length; k++) next[k] = xs[k] + c0 * eps[k] + c1 * epsPrev[k];
    }
    xs = next;
    epsPrev = eps;
    options.onStep?.({ step: i, total: steps, sigma: sigmas[i], x: result(xs, sigmas[i + 1]), denoised: x0 });
  }
  return result(xs, sigmas[steps]);
};
