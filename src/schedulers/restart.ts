/**
 * AUTOMATIC1111's Restart sampler (modules/sd_samplers_extra.py restart_sampler; Xu et al. 2023,
 * arXiv:2306.14878): Heun steps, and from 20 steps on a restart segment — the walk goes back up
 * from sigma ~0.1 to ~2 with fresh noise and descends again on its own Karras schedule, once (9
 * steps) or from 36 steps twice (steps // 4 each). To keep the step count, the main walk is then a
 * Karras schedule between the given sigmas' ends (sigmas[-2] and sigmas[0]) with the restart
 * steps taken off; below 20 steps the given sigmas are walked as they are.
 */
import { heunStep } from './k-samplers.js';
import { karrasSigmas } from './schedules.js';
import type { Sampler } from './types.js';

const f32 = Math.fround;

/** torch.argmin(abs(sigmas - value)): the first index nearest to value, in float32. */
function nearest(sigmas: Float64Array, value: number): number {
  let best = 0;
  for (let i = 1; i < sigmas.length; i++) if (Math.abs(f32(sigmas[i] - value)) < Math.abs(f32(sigmas[best] - value))) best = i;
  return best;
}

/** The (from, to) pairs restart_sampler walks for a schedule of sigmas. */
export function restartSegments(sigmas: Float64Array): [number, number][] {
  const steps = sigmas.length - 1;
  let walk = sigmas;
  let restart: { at: number; steps: number; times: number; max: number } | undefined;
  if (steps >= 20) {
    const restartSteps = steps >= 36 ? Math.floor(steps / 4) : 9;
    const times = steps >= 36 ? 2 : 1;
    walk = karrasSigmas(steps - restartSteps * times, sigmas[steps - 1], sigmas[0]);
    restart = { at: nearest(walk, 0.1), steps: restartSteps + 1, times, max: 2 };
  }
  const segments: [number, number][] = [];
  for (let i = 0; i < walk.length - 1; i++) {
    segments.push([walk[i], walk[i + 1]]);
    if (restart && i + 1 === restart.at) {
      const maxIdx = nearest(walk, restart.max);
      if (maxIdx < restart.at) {
        const up = karrasSigmas(restart.steps, walk[restart.at], walk[maxIdx]).subarray(0, restart.steps);
        for (let t = 0; t < restart.times; t++) for (let k = 0; k < up.length - 1; k++) segments.push([up[k], up[k + 1]]);
      }
    }
  }
  return segments;
}

/** Restart; draws one noise tensor where the walk goes back up (s_noise applies). */
export const restart: Sampler = async (denoise, x, sigmas, options) => {
  const segments = restartSegments(sigmas);
  const total = segments.length;
  let last: number | undefined;
  for (let i = 0; i < total; i++) {
    const [from, to] = segments[i];
    if (last !== undefined && last < from) {
      const noise = options.noise(last, from);
      const sNoise = options.sNoise ?? 1;
      const root = f32(Math.sqrt(f32(f32(from * from) - f32(last * last))));
      x = Float32Array.from(x, (v, k) => v + f32(f32(noise[k] * sNoise) * root));
    }
    const step = await heunStep(denoise, x, from, to);
    x = step.x;
    options.onStep?.({ step: i, total, sigma: from, x, denoised: step.denoised });
    last = to;
  }
  return x;
};
