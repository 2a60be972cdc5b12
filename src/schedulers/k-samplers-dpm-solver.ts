/**
 * k-diffusion's DPM-Solver (Lu et al. 2022, noise-prediction form; k_diffusion/sampling.py
 * DPMSolver, sample_dpm_fast, sample_dpm_adaptive). They take a sigma range, not a schedule: as
 * ComfyUI calls them, from sigmas[0] down to the last sigma above 0, with fast's step budget the
 * schedule's step count (A1111's img2img passes the same; its txt2img passes the model's whole
 * range, which is what its default schedule spans). Times are t = -log(sigma) in float32 tensors,
 * emulated here because the adaptive controller's accept/reject decisions and the step sizes
 * depend on them; both draw noise after every (accepted) step even when eta is 0, as k-diffusion does.
 */
import { ancestralStep } from './k-samplers.js';
import { torchLinspace32 } from './model.js';
import type { Denoiser, Latents, SamplerOptions } from './types.js';

const f32 = Math.fround;
const tOf = (sigma: number) => f32(-f32(Math.log(sigma)));
const sigmaOf = (t: number) => f32(Math.exp(-t));

/** The sigma range a schedule hands these samplers: its first sigma and its last one above 0. */
function range(sigmas: Float64Array): { sigmaMax: number; sigmaMin: number } {
  const last = sigmas[sigmas.length - 1];
  return { sigmaMax: f32(sigmas[0]), sigmaMin: f32(last > 0 ? last : sigmas[sigmas.length - 2]) };
}

/** x + sum of coefficient * vector, each product a float32 tensor as in k-diffusion's expressions. */
function axpy(x: Latents, terms: [number, Float64Array | Latents][]): Latents {
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) {
    let v = x[k];
    for (const [c, d] of terms) v = f32(v - f32(c * d[k]));
    out[k] = v;
  }
  return out;
}

const diff = (a: Latents, b: Latents) => Float32Array.from(a, (v, k) => v - b[k]);

/** DPMSolver with its per-step evaluation cache (eps at t, at s1 = t + r1 h, at s2). */
class Solver {
  private cache = new Map<string, Latents>();
  /** The x0 estimate at the step's start, for progress reports. */
  denoised: Latents = new Float32Array(0);
  constructor(private readonly denoise: Denoiser) {}

  reset(): void {
    this.cache = new Map();
  }

  /** eps = (x - denoised) / sigma(t), once per key and step. */
  async eps(key: string, x: Latents, t: number): Promise<Latents> {
    const cached = this.cache.get(key);
    if (cached) return cached;
    const sigma = sigmaOf(t);
    const denoised = await this.denoise(x, sigma);
    if (key === 'eps') this.denoised = denoised;
    const eps = Float32Array.from(x, (v, k) => f32(v - denoised[k]) / sigma);
    this.cache.set(key, eps);
    return eps;
  }

  async step1(x: Latents, t: number, tNext: number): Promise<Latents> {
    const h = f32(tNext - t);
    const eps = await this.eps('eps', x, t);
    return axpy(x, [[f32(sigmaOf(tNext) * f32(Math.expm1(h))), eps]]);
  }

  async step2(x: Latents, t: number, tNext: number, r1 = 1 / 2): Promise<Latents> {
    const h = f32(tNext - t);
    const eps = await this.eps('eps', x, t);
    const s1 = f32(t + f32(r1 * h));
    const u1 = axpy(x, [[f32(sigmaOf(s1) * f32(Math.expm1(f32(r1 * h)))), eps]]);
    const epsR1 = await this.eps('eps_r1', u1, s1);
    const c = f32(sigmaOf(tNext) * f32(Math.expm1(h)));
    return axpy(x, [[c, eps], [f32(f32(sigmaOf(tNext) / (2 * r1)) * f32(Math.expm1(h))), diff(epsR1, eps)]]);
  }

  async step3(x: Latents, t: number, tNext: number, r1 = 1 / 3, r2 = 2 / 3): Promise<Latents> {
    const h = f32(tNext - t);
    const eps = await this.eps('eps', x, t);
    const s1 = f32(t + f32(r1 * h));
    const s2 = f32(t + f32(r2 * h));
    const u1 = axpy(x, [[f32(sigmaOf(s1) * f32(Math.expm1(f32(r1 * h)))), eps]]);
    const epsR1 = await this.eps('eps_r1', u1, s1);
    const r2h = f32(r2 * h);
    const e2 = f32(Math.expm1(r2h));
    const u2 = axpy(x, [
      [f32(sigmaOf(s2) * e2), eps],
      [f32(f32(f32(sigmaOf(s2) * (r2 / r1)) * f32(f32(e2 / r2h) - 1))), diff(epsR1, eps)],
    ]);
    const epsR2 = await this.eps('eps_r2', u2, s2);
    const eh = f32(Math.expm1(h));
    return axpy(x, [
      [f32(sigmaOf(tNext) * eh), eps],
      [f32(f32(sigmaOf(tNext) / r2) * f32(f32(eh / h) - 1)), diff(epsR2, eps)],
    ]);
  }
}

/** For an ancestral step from t to tNext: the time to step to and the noise to add back, float32. */
function ancestral(t: number, tNext: number, tEnd: number, eta: number): { to: number; up: number } {
  if (!eta) return { to: tNext, up: 0 };
  const { down } = ancestralStep(sigmaOf(t), sigmaOf(tNext), eta);
  const to = Math.min(tEnd, tOf(f32(down)));
  return { to, up: f32(Math.sqrt(f32(f32(sigmaOf(tNext) ** 2) - f32(sigmaOf(to) ** 2)))) };
}

function addNoise(x: Latents, options: SamplerOptions, up: number, sigma: number, sigmaNext: number): Latents {
  const noise = options.noise(sigma, sigmaNext);
  const scale = f32(up * (options.sNoise ?? 1));
  return Float32Array.from(x, (v, k) => v + f32(scale * noise[k]));
}

/** DPM-Solver-Fast: `steps` evaluations over third-order steps (a second and first order one to finish); eta defaults to 0. */
export async function dpmFast(denoise: Denoiser, x: Latents, sigmas: Float64Array, options: SamplerOptions): Promise<Latents> {
  const nfe = sigmas.length - 1;
  const eta = options.eta ?? 0;
  const { sigmaMax, sigmaMin } = range(sigmas);
  const tEnd = tOf(sigmaMin);
  const m = Math.floor(nfe / 3) + 1;
  const ts = torchLinspace32(tOf(sigmaMax), tEnd, m + 1);
  const orders = nfe % 3 === 0 ? [...Array<number>(m - 2).fill(3), 2, 1] : [...Array<number>(m - 1).fill(3), nfe % 3];
  const solver = new Solver(denoise);
  for (let i = 0; i < orders.length; i++) {
    solver.reset();
    const t = ts[i];
    const { to, up } = ancestral(t, ts[i + 1], tEnd, eta);
    x = orders[i] === 1 ? await solver.step1(x, t, to) : orders[i] === 2 ? await solver.step2(x, t, to) : await solver.step3(x, t, to);
    x = addNoise(x, options, up, sigmaOf(t), sigmaOf(ts[i + 1]));
    options.onStep?.({ step: i, total: orders.length, sigma: sigmaOf(t), x, denoised: solver.denoised });
  }
  return x;
}

/** PIDStepSizeController with k-diffusion's defaults (pcoeff 0, icoeff 1, dcoeff 0: an integral controller). */
class StepSizeController {
  private errs: number[] = [];
  constructor(
    public h: number,
    private readonly order: number,
    private readonly acceptSafety = 0.81,
  ) {}

  propose(error: number): boolean {
    const inv = 1 / (error + 1e-8);
    if (this.errs.length === 0) this.errs = [inv, inv, inv];
    this.errs[0] = inv;
    const factor = 1 + Math.atan(this.errs[0] ** (1 / this.order) - 1);
    const accept = factor >= this.acceptSafety;
    if (accept) this.errs = [this.errs[0], this.errs[0], this.errs[1]];
    this.h *= factor;
    return accept;
  }
}

/**
 * DPM-Solver-23 (order 3, k-diffusion's default) with adaptive step size: each attempt compares a
 * second- and a third-order step (rtol 0.05, atol 0.0078), and rejected attempts are retried with a
 * smaller step (re-evaluating the model at the same point, as k-diffusion does). eta defaults to 0.
 */
export async function dpmAdaptive(denoise: Denoiser, x: Latents, sigmas: Float64Array, options: SamplerOptions): Promise<Latents> {
  const eta = options.eta ?? 0;
  const { sigmaMax, sigmaMin } = range(sigmas);
  const tEnd = tOf(sigmaMin);
  const atol = f32(0.0078);
  const rtol = f32(0.05);
  const pid = new StepSizeController(0.05, eta ? 1.5 : 3);
  const solver = new Solver(denoise);
  let s = tOf(sigmaMax);
  let xPrev = x;
  let accepted = 0;
  while (s < f32(tEnd - 1e-5)) {
    solver.reset();
    const t = Math.min(tEnd, f32(s + pid.h));
    const { to, up } = ancestral(s, t, tEnd, eta);
    const low = await solver.step2(x, s, to, 1 / 3);
    const high = await solver.step3(x, s, to);
    let sum = 0;
    for (let k = 0; k < x.length; k++) {
      const delta = Math.max(atol, f32(rtol * Math.max(Math.abs(low[k]), Math.abs(xPrev[k]))));
      const r = f32(f32(low[k] - high[k]) / delta);
      sum += r * r;
    }
    const error = f32(f32(Math.sqrt(sum)) / Math.sqrt(x.length));
    if (pid.propose(error)) {
      xPrev = low;
      x = addNoise(high, options, up, sigmaOf(s), sigmaOf(t));
      s = t;
      options.onStep?.({ step: accepted, total: Math.max(sigmas.length - 1, accepted + 1), sigma: sigmaOf(s), x, denoised: solver.denoised });
      accepted++;
    }
  }
  return x;
}

