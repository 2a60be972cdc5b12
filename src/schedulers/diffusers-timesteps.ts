/**
 * diffusers' set_timesteps: the inference timesteps each scheduler class spreads over the training
 * range for a timestep_spacing, and the sigmas it interpolates there (the `normal` schedule).
 */
import type { TimestepRule } from './diffusers-classes.js';
import { numpyArangeDown, numpyLinspace } from './numpy.js';
import { roundHalfEven } from '../round-half-even.js';
import { withZero } from './schedules.js';
import type { DiscreteSchedule } from './types.js';
import { lcmTimesteps } from './vp-lcm.js';

const f32 = Math.fround;

/** Descending inference timesteps as set_timesteps computes them for a class's rule and the model's spacing. */
export function diffusersTimesteps(model: DiscreteSchedule, steps: number, rule: TimestepRule): Float64Array {
  if (rule === 'lcm') return Float64Array.from(lcmTimesteps(model, steps));
  const T = model.numTrainTimesteps;
  const spacing = model.timestepSpacing;
  if (spacing === 'trailing') {
    return numpyArangeDown(T, T / steps).map((t) => roundHalfEven(t) - 1);
  }
  if (rule === 'dpmsolver') {
    const ascending =
      spacing === 'linspace'
        ? numpyLinspace(0, T - 1, steps + 1).map(roundHalfEven)
        : numpyLinspace(0, steps, steps + 1).map((i) => i * Math.floor(T / (steps + 1)) + model.stepsOffset);
    return ascending.slice(1).reverse();
  }
  if (spacing === 'linspace') {
    const ts = numpyLinspace(0, T - 1, steps);
    return (rule === 'ddim' ? ts.map(roundHalfEven) : ts.map(f32)).reverse();
  }
  const ratio = Math.floor(T / steps);
  return Float64Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + model.stepsOffset);
}

/** np.interp over the training sigmas: diffusers interpolates sigma linearly, not in log-sigma. */
function interpSigma(model: DiscreteSchedule, t: number): number {
  const last = model.numTrainTimesteps - 1;
  if (t <= 0) return model.sigmas[0];
  if (t >= last) return model.sigmas[last];
  const low = Math.floor(t);
  const w = t - low;
  return w === 0 ? model.sigmas[low] : (model.sigmas[low + 1] - model.sigmas[low]) * w + model.sigmas[low];
}

/**
 * The sigmas of those timesteps, then the last one: 0, or with final_sigmas_type sigma_min the
 * smallest training sigma (the last step then stops there instead of at x0).
 */
export function normalSigmas(model: DiscreteSchedule, steps: number, rule: TimestepRule): Float64Array {
  const sigmas = withZero(diffusersTimesteps(model, steps, rule).map((t) => interpSigma(model, t)));
  if (model.finalSigmas === 'sigma_min') sigmas[steps] = model.sigmas[0];
  return sigmas;
}
