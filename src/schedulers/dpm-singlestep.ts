/**
 * diffusers' DPMSolverSinglestepScheduler with its defaults (DPM-Solver++, solver_order 2,
 * midpoint) in sigma space. Steps come in pairs: a first-order step to the pair's midpoint
 * timestep, then a second-order step from the pair's start to its end that uses both
 * evaluations. The order of each step is diffusers' order list, keyed to the whole schedule's
 * steps (so an img2img run starts where the list says, lowered while fewer evaluations exist).
 */
import { combine, report } from './k-samplers.js';
import type { Latents, Sampler } from './types.js';

/** DPMSolverSinglestepScheduler.get_order_list for solver_order 2. */
export function singlestepOrders(steps: number, lowerOrderFinal: boolean, finalZero: boolean): number[] {
  // diffusers forces lower_order_final for odd step counts and for a final sigma of 0.
  const lower = lowerOrderFinal || steps % 2 !== 0 || finalZero;
  const pairs = (n: number) => Array.from({ length: 2 * n }, (_, i) => (i % 2) + 1);
  const orders = !lower ? pairs(Math.floor(steps / 2)) : steps % 2 === 0 ? [...pairs(steps / 2 - 1), 1, 1] : [...pairs(Math.floor(steps / 2)), 1];
  if (finalZero) orders[orders.length - 1] = 1;
  return orders;
}

export const dpmpp2s: Sampler = async (denoise, x, sigmas, options) => {
  const full = denoise.grid?.cut?.sigmas ?? sigmas;
  const start = denoise.grid?.cut?.start ?? 0;
  const steps = full.length - 1;
  const orders = singlestepOrders(steps, denoise.model.lowerOrderFinal, !(full[steps] > 0));
  let sample = x; // the pair's starting point
  let previous: Latents | undefined;
  for (let i = 0; i < sigmas.length - 1; i++) {
    const denoised = await denoise(x, sigmas[i]);
    const order = previous ? orders[start + i] : 1;
    const sigmaNext = sigmas[i + 1];
    if (order === 1) {
      sample = x;
      // x_t = (sigma_t / sigma_s) x - expm1(-h) m0, which at sigma_t = 0 is m0.
      x = sigmaNext > 0 ? combine(sigmaNext / sigmas[i], x, -Math.expm1(Math.log(sigmaNext) - Math.log(sigmas[i])), denoised) : Float32Array.from(denoised);
    } else {
      // From the pair's start s1 = sigmas[i - 1] past s0 = sigmas[i] to t: D0 = m1, D1 = (m0 - m1) / r0.
      const h = Math.log(sigmas[i - 1]) - Math.log(sigmaNext);
      const r0 = (Math.log(sigmas[i - 1]) - Math.log(sigmas[i])) / h;
      const phi = -Math.expm1(-h);
      const target = combine(1 - 0.5 / r0, previous!, 0.5 / r0, denoised);
      x = combine(sigmaNext / sigmas[i - 1], sample, phi, target);
    }
    previous = denoised;
    report(options, i, sigmas, x, denoised);
  }
  return x;
};
