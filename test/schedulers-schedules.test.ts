/**
 * The model's training schedule and the sigma schedules against diffusers 0.32.2 / k-diffusion
 * 0.1.1 / ComfyUI's scheduler functions (test/fixtures/samplers/schedules.json, from
 * tools/make_sampler_refs.py).
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { discreteSchedule, SAMPLERS, SCHEDULES, type DiffusersClassId, type SchedulerConfig } from '../src/schedulers/index.js';
import { betaPpf } from '../src/schedulers/schedules.js';
import { diffusersTimesteps, normalSigmas } from '../src/schedulers/diffusers-timesteps.js';
import type { TimestepRule } from '../src/schedulers/diffusers-classes.js';

interface ModelRef {
  config: SchedulerConfig;
  alphas_cumprod: number[];
  sigmas: number[];
  sigma_to_t: { sigma: number[]; t: number[] };
  t_to_sigma: { t: number[]; sigma: number[] };
}
interface NormalRef {
  sigmas?: number[];
  timesteps: number[];
  init_noise_sigma?: number;
}
interface Refs {
  models: Record<string, ModelRef>;
  schedules: Record<string, Record<string, Record<string, number[] | NormalRef>>>;
  beta_ppf: { a: number; b: number; p: number[]; x: number[] }[];
  diffusers_karras: Record<string, number[]>;
}

/** The references read every model as EulerDiscreteScheduler.from_config does. */
const EULER = { class: 'EulerDiscreteScheduler' } as const;

const refs: Refs = JSON.parse(
  readFileSync(new URL('../../test/fixtures/samplers/schedules.json', import.meta.url), 'utf8'),
);

/** The fixture prints float32 values as their shortest decimals; this recovers the exact floats. */
const f32s = (values: number[]) => values.map(Math.fround);

/** Largest |a - b| / max(|b|, floor) over the arrays, after checking lengths. */
function maxRelError(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-30): number {
  assert.is(actual.length, expected.length, 'length');
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(Math.abs(expected[i]), floor));
  }
  return worst;
}

/** One float32 ulp, relative: torch's float32 sqrt/exp/pow on this CPU are not correctly rounded. */
const ULP32 = 2 ** -23;

// The training schedule is computed in float32 exactly as torch computes it (linspace, square,
// cumprod with a float64 accumulator), so alphas_cumprod match bit for bit and sigmas to one ulp
// of torch's square root. Zero terminal SNR takes square roots first and then subtracts the last
// one, which near the end of the schedule cancels almost everything: an ulp there becomes ~4e-6
// relative, so zero-SNR models get ZSNR_TOL throughout.
const ZSNR_TOL = 1e-5;
for (const [name, ref] of Object.entries(refs.models)) {
  test(`model ${name}: alphas_cumprod and sigmas match diffusers`, () => {
    const model = discreteSchedule(ref.config, EULER);
    const acErr = maxRelError(model.alphasCumprod, f32s(ref.alphas_cumprod));
    assert.ok(name === 'zsnr' ? acErr <= ZSNR_TOL : acErr === 0, `alphas_cumprod ${acErr}`);
    const err = maxRelError(model.sigmas, f32s(ref.sigmas));
    assert.ok(err <= (name === 'zsnr' ? ZSNR_TOL : ULP32), `sigmas ${err}`);
    assert.is(model.sigmaMax, model.sigmas[model.sigmas.length - 1]);
  });

  // k-diffusion interpolates in float32 and we in float64: 2e-4 absolute in t (up to 999, so
  // ~1e-7 relative; zero-SNR sigmas carry a few ulps more) and 1e-6 relative in sigma.
  test(`model ${name}: sigmaToT / tToSigma match k-diffusion`, () => {
    const model = discreteSchedule(ref.config, EULER);
    f32s(ref.sigma_to_t.sigma).forEach((sigma, i) => {
      const err = Math.abs(model.sigmaToT(sigma) - ref.sigma_to_t.t[i]);
      assert.ok(err < 2e-4, `sigma_to_t(${sigma}) ${err}`);
    });
    f32s(ref.t_to_sigma.t).forEach((t, i) => {
      const err = Math.abs(model.tToSigma(t) - ref.t_to_sigma.sigma[i]) / ref.t_to_sigma.sigma[i];
      assert.ok(err < (name === 'zsnr' ? ZSNR_TOL : 1e-6), `t_to_sigma(${t}) ${err}`);
    });
  });
}

test('zero terminal SNR clamps the last alpha_cumprod to 2**-24 as diffusers does', () => {
  const model = discreteSchedule(refs.models.zsnr.config, EULER);
  assert.is(model.alphasCumprod[999], 2 ** -24);
  assert.ok(Number.isFinite(model.sigmaMax) && model.sigmaMax > 4000);
});

// Every schedule is float32 at the end, as in the references, and their float32 arithmetic is
// mirrored op by op; what remains is torch's exp/pow/log being off by up to an ulp.
const SCHEDULE_TOL = 4 * ULP32;

for (const [modelName, bySteps] of Object.entries(refs.schedules)) {
  const model = discreteSchedule(refs.models[modelName].config, EULER);
  const tol = modelName === 'zsnr' ? ZSNR_TOL : SCHEDULE_TOL;
  for (const [steps, byName] of Object.entries(bySteps)) {
    test(`schedules ${modelName} steps=${steps}: k-diffusion / ComfyUI schedules`, () => {
      for (const name of ['karras', 'exponential', 'uniform', 'sgm_uniform', 'simple', 'ddim_uniform', 'beta'] as const) {
        const err = maxRelError(SCHEDULES[name](model, Number(steps), SAMPLERS.euler).sigmas, byName[name] as number[]);
        assert.ok(err <= tol, `${name}: ${err}`);
      }
    });

    test(`schedules ${modelName} steps=${steps}: diffusers set_timesteps per family and spacing`, () => {
      // The reference's classes: the rule is the class's, and so is the default spacing.
      const classOf: Record<string, DiffusersClassId> = { euler: 'EulerDiscreteScheduler', dpmsolver: 'DPMSolverMultistepScheduler', ddim: 'DDIMScheduler' };
      for (const rule of ['euler', 'dpmsolver', 'ddim'] as TimestepRule[]) {
        for (const spacing of ['default', 'leading', 'linspace', 'trailing']) {
          const file = refs.models[modelName].config;
          const config = discreteSchedule(spacing === 'default' ? file : { ...file, timestep_spacing: spacing }, { class: classOf[rule] });
          const ref = byName[`normal_${rule}_${spacing}`] as NormalRef;
          const ts = diffusersTimesteps(config, Number(steps), rule);
          assert.equal(Array.from(ts, Math.fround), ref.timesteps, `${rule}/${spacing} timesteps`);
          if (ref.sigmas) {
            const err = maxRelError(normalSigmas(config, Number(steps), rule), ref.sigmas);
            assert.ok(err <= tol, `${rule}/${spacing} sigmas ${err}`);
          }
        }
      }
    });
  }
}

test('SCHEDULES.normal is EulerDiscreteScheduler.set_timesteps for the config as shipped', () => {
  const model = discreteSchedule(refs.models.sd15.config, { class: 'EulerDiscreteScheduler' });
  const ref = refs.schedules.sd15['10'].normal_euler_default as NormalRef;
  assert.ok(maxRelError(SCHEDULES.normal(model, 10, SAMPLERS.euler).sigmas, ref.sigmas!) <= SCHEDULE_TOL);
});

test('beta ppf matches scipy.stats.beta.ppf', () => {
  // Bisection on a ~1e-15-accurate incomplete beta function; scipy's boost ibeta_inv is as
  // accurate. The quantile is ill-conditioned where the density vanishes (p -> 1 with b = 3:
  // dx = dp / pdf ~ 1e-16 / 1e-5), so the bound is 1e-12 plus that conditioning.
  for (const { a, b, p, x } of refs.beta_ppf) {
    p.forEach((pi, i) => {
      const err = Math.abs(betaPpf(pi, a, b) - x[i]);
      const conditioning = Math.abs(x[i] - betaPpf(Math.min(pi + 1e-15, 1), a, b));
      assert.ok(err <= 1e-12 + 100 * conditioning, `ppf(${pi}; ${a}, ${b}) off by ${err}`);
    });
  }
});

test.run();
