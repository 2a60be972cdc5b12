import { fmaf } from '../fmaf.js';

/**
 * torch.optim.AdamW (torch 2.5, the single-tensor path torch takes for CPU tensors) on a float32
 * parameter, in torch's operation order and float32 rounding:
 *   p ← p·(1 − lr·wd);  m ← lerp(m, g, 1 − β1);  v ← v·β2 + (1 − β2)·g·g;
 *   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 * Scalars are computed in double and enter each float32 operation rounded, as Python floats do;
 * lerp is ATen's vectorised form, fused (start + w·(end − start) as one FMA for w < 0.5).
 */

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** diffusers' textual_inversion.py defaults (adam_beta1/2, adam_epsilon, adam_weight_decay). */
export const DIFFUSERS_ADAMW: AdamWSettings = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 };

export interface AdamWState {
  /** Updates taken so far (torch's `step`). */
  step: number;
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

export function newAdamWState(size: number): AdamWState {
  return { step: 0, expAvg: new Float32Array(size), expAvgSq: new Float32Array(size) };
}

const f = Math.fround;

/** One update of `param` in place with gradient `grad` at learning rate `lr`. */
export function adamWStep(param: Float32Array, grad: Float32Array, state: AdamWState, lr: number, s: AdamWSettings): void {
  state.step += 1;
  const t = state.step;
  const decay = f(1 - lr * s.weightDecay);
  const w = f(1 - s.beta1);
  const beta2 = f(s.beta2);
  const oneMinusBeta2 = f(1 - s.beta2);
  const biasCorrection1 = 1 - s.beta1 ** t;
  const biasCorrection2Sqrt = f(Math.sqrt(1 - s.beta2 ** t));
  const stepSize = f(-(lr / biasCorrection1));
  const eps = f(s.eps);
  const { expAvg: m, expAvgSq: v } = state;
  for (let i = 0; i < param.length; i++) {
    const g = grad[i]!;
    const p = f(param[i]! * decay);
    m[i] = w < 0.5 ? fmaf(w, f(g - m[i]!), m[i]!) : fmaf(f(w - 1), f(g - m[i]!), g);
    v[i] = f(f(v[i]! * beta2) + f(f(oneMinusBeta2 * g) * g));
    const denom = f(f(f(Math.sqrt(v[i]!)) / biasCorrection2Sqrt) + eps);
    param[i] = f(p + f(f(stepSize * m[i]!) / denom));
  }
}
