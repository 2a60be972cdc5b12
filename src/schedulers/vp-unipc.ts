/**
 * UniPC (Zhao et al. 2023) in its B(h) form with data prediction: the loop and update shared by
 * diffusers' UniPCMultistepScheduler (solver_order 2, bh2, predict_x0, lower_order_final; here)
 * and ComfyUI's uni_pc / uni_pc_bh2 (vp-comfy-unipc.ts).
 *
 * In sigma space the update is short: with lambda = -log(sigma) (diffusers' log(alpha_t) -
 * log(sigma_t) in VP terms), h = lambda_t - lambda_s0 and hh = -h,
 *   x_t = (sigma_t / sigma_s0) x - expm1(hh) m0 - B(h) * sum_k rho_k D_k,
 * where m are x0 estimates and D_k = (m_k - m0) / r_k the scaled differences.
 * Stepping to sigma 0 with order 1 gives x_t = m0, diffusers' last result.
 */
import type { Latents, Sampler } from './types.js';

export type UniPcVariant = 'bh1' | 'bh2';

/** A past x0 estimate and the sigma it was made at. */
interface History {
  m: Latents;
  sigma: number;
}

/** Solves the small dense system a x = b (Gaussian elimination with partial pivoting). */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / m[col][col];
      for (let c = col; c <= n; c++) m[r][c] -= f * m[col][c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let c = r + 1; c < n; c++) s -= m[r][c] * x[c];
    x[r] = s / m[r][r];
  }
  return x;
}

/**
 * The coordinates a UniPC loop runs in. In sigma space lambda = -log(sigma), the latents factor is
 * sigma_t / sigma_s0 and the x0 terms are unscaled; in diffusers' and ComfyUI's VP form they are
 * log(alpha/sigma_vp), sigma_vp,t / sigma_vp,s0 and alpha_t.
 */
export interface UniPcSpace {
  lambda(sigma: number): number;
  ratio(sigmaS0: number, sigmaT: number): number;
  alpha(sigma: number): number;
}

export const SIGMA_SPACE: UniPcSpace = {
  lambda: (sigma) => -Math.log(sigma),
  ratio: (sigmaS0, sigmaT) => sigmaT / sigmaS0,
  alpha: () => 1,
};

/**
 * One UniPC update of x (at history's newest sigma) to sigmaT with the given order: the predictor,
 * or with modelT (the x0 estimate at the predicted point) the corrector.
 */
export function uniPcUpdate(
  space: UniPcSpace,
  variant: UniPcVariant,
  x: Float64Array,
  history: History[],
  sigmaT: number,
  order: number,
  modelT?: Latents,
): Float64Array {
  const { m: m0, sigma: sigmaS0 } = history[history.length - 1];
  const lambdaS0 = space.lambda(sigmaS0);
  const h = space.lambda(sigmaT) - lambdaS0;
  const rks: number[] = [];
  const d1s: Float64Array[] = [];
  for (let i = 1; i < order; i++) {
    const prev = history[history.length - 1 - i];
    const rk = (space.lambda(prev.sigma) - lambdaS0) / h;
    rks.push(rk);
    d1s.push(Float64Array.from(prev.m, (v, k) => (v - m0[k]) / rk));
  }
  rks.push(1);

  const hh = -h;
  const hPhi1 = Math.expm1(hh);
  const bH = variant === 'bh1' ? hh : Math.expm1(hh);
  const rows: number[][] = [];
  const b: number[] = [];
  let hPhiK = hPhi1 / hh - 1;
  let factorial = 1;
  for (let i = 1; i <= order; i++) {
    rows.push(rks.map((r) => r ** (i - 1)));
    b.push((hPhiK * factorial) / bH);
    factorial *= i + 1;
    hPhiK = hPhiK / hh - 1 / factorial;
  }

  // Residual weights: the references' shortcuts (0.5 for a 2nd-order predictor and a 1st-order
  // corrector) are not the solved values, so they are kept.
  let rhos: number[];
  if (modelT === undefined) {
    rhos = d1s.length === 0 ? [] : order === 2 ? [0.5] : solve(rows.slice(0, -1).map((r) => r.slice(0, -1)), b.slice(0, -1));
  } else {
    rhos = order === 1 ? [0.5] : solve(rows, b);
  }

  const ratio = space.ratio(sigmaS0, sigmaT);
  const alphaT = space.alpha(sigmaT);
  const cM0 = alphaT * hPhi1;
  const cResidual = alphaT * bH;
  const out = new Float64Array(x.length);
  for (let k = 0; k < out.length; k++) {
    let residual = 0;
    for (let j = 0; j < d1s.length; j++) residual += rhos[j] * d1s[j][k];
    if (modelT !== undefined) residual += rhos[rhos.length - 1] * (modelT[k] - m0[k]);
    // Skipping a zero residual keeps B(h) = -inf (bh1 onto sigma 0) from turning it into NaN.
    out[k] = ratio * x[k] - cM0 * m0[k] - (residual === 0 ? 0 : cResidual * residual);
  }
  return out;
}

export interface UniPcLoop {
  space: UniPcSpace;
  variant: UniPcVariant;
  /** The highest order; the loop warms up from 1 and ends with 1 (lower_order_final). */
  order: number;
  /** The x0 estimate for latents in the loop's coordinates at a sigma of the walk. */
  evaluate(state: Float64Array, sigma: number): Promise<Latents>;
  /** Reports the latents after step i (in the loop's coordinates) with that step's evaluation. */
  onStep?(step: number, state: Float64Array, denoised: Latents): void;
}

/**
 * The multistep UniPC loop shared by diffusers' UniPCMultistepScheduler and ComfyUI's
 * sample_unipc: at each sigma, evaluate, correct the latents just predicted with that evaluation
 * (same order as their predictor), then predict the next sigma. The last step is never corrected;
 * the evaluation made before a correction is the one kept in the history.
 */
export async function runUniPc(loop: UniPcLoop, start: Float64Array, walk: ArrayLike<number>): Promise<Float64Array> {
  const steps = walk.length - 1;
  let state = start;
  const history: History[] = [];
  let lastSample: Float64Array | undefined;
  let lastOrder = 0;
  for (let i = 0; i < steps; i++) {
    const m = await loop.evaluate(state, walk[i]);
    if (lastSample) state = uniPcUpdate(loop.space, loop.variant, lastSample, history, walk[i], lastOrder, m);
    history.push({ m, sigma: walk[i] });
    if (history.length > loop.order) history.shift();
    const order = Math.max(1, Math.min(loop.order, steps - i, i + 1));
    lastSample = state;
    state = uniPcUpdate(loop.space, loop.variant, state, history, walk[i + 1], order);
    lastOrder = order;
    loop.onStep?.(i, state, m);
  }
  return state;
}

/**
 * diffusers' UniPCMultistepScheduler defaults (solver_order 2, bh2). In sigma space its VP
 * arithmetic cancels down to the sigma-space update; ending at sigma 0, the result is the last
 * x0 estimate, which is what diffusers decodes.
 */
export const unipc: Sampler = async (denoise, x, sigmas, options) => {
  const total = sigmas.length - 1;
  const result = await runUniPc(
    {
      space: SIGMA_SPACE,
      variant: 'bh2',
      order: 2,
      evaluate: (state, sigma) => denoise(Float32Array.from(state), sigma),
      onStep: (step, state, denoised) =>
        options.onStep?.({ step, total, sigma: sigmas[step], x: Float32Array.from(state), denoised }),
    },
    Float64Array.from(x),
    sigmas,
  );
  return Float32Array.from(result);
};
