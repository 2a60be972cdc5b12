/**
 * kl_optimal, Align Your Steps, linear_quadratic and polyexponential against ComfyUI's and
 * AUTOMATIC1111's own functions (test/fixtures/samplers/more-schedules.json, from
 * tools/make_schedule_refs.py), for SD 1.5's training schedule.
 */
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SAMPLERS, SCHEDULES, a1111Name, discreteSchedule, resolveSampler, type ScheduleId, type SchedulerConfig } from '../src/schedulers/index.js';
import {
  AYS_NOISE_LEVELS,
  alignYourStepsA1111Sigmas,
  alignYourStepsSigmas,
  klOptimalA1111Sigmas,
  klOptimalSigmas,
  linearQuadraticSigmas,
  polyexponentialSigmas,
} from '../src/schedulers/schedules.js';

interface ToolRefs {
  sigma_min: number;
  sigma_max: number;
  steps: Record<string, Record<string, number[]>>;
}
const refs: { config: SchedulerConfig; comfyui: ToolRefs; a1111: ToolRefs } = JSON.parse(
  readFileSync(new URL('../../test/fixtures/samplers/more-schedules.json', import.meta.url), 'utf8'),
);

/** Largest |a - b| / |b| (zeros must match exactly), after checking lengths. */
function maxRelError(actual: ArrayLike<number>, expected: number[]): number {
  assert.is(actual.length, expected.length, 'length');
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.fround(expected[i]);
    worst = Math.max(worst, e === 0 ? (actual[i] === 0 ? 0 : Infinity) : Math.abs(actual[i] - e) / Math.abs(e));
  }
  return worst;
}

// The references compute in float32 (torch) or float64 rounded to float32 (numpy, Python
// floats); the ports repeat each rounding, so what is left is torch's vectorised float32
// tan/atan/exp (1 ulp, 6e-8) — and tan near pi/2 turns one ulp of its argument into ~1.7e-6
// at sigma 14.6, which is why the arctans are rounded exactly as torch holds them.
const TOL = 1e-6;

// Given each tool's own sigma range, each function must reproduce that tool.
type Port = (n: number, ref: ToolRefs) => Float64Array;
const PORTS: Record<'comfyui' | 'a1111', Record<string, Port>> = {
  comfyui: {
    kl_optimal: (n, r) => klOptimalSigmas(n, r.sigma_min, r.sigma_max),
    linear_quadratic: (n, r) => linearQuadraticSigmas(n, r.sigma_max),
    align_your_steps: (n) => alignYourStepsSigmas(AYS_NOISE_LEVELS.sd1, n),
    align_your_steps_sdxl: (n) => alignYourStepsSigmas(AYS_NOISE_LEVELS.sdxl, n),
  },
  a1111: {
    kl_optimal: (n, r) => klOptimalA1111Sigmas(n, r.sigma_min, r.sigma_max),
    align_your_steps: (n) => alignYourStepsA1111Sigmas(AYS_NOISE_LEVELS.sd1A1111, n),
    polyexponential: (n, r) => polyexponentialSigmas(n, r.sigma_min, r.sigma_max),
  },
};

let worstPort = 0;
for (const tool of ['comfyui', 'a1111'] as const) {
  for (const [name, port] of Object.entries(PORTS[tool])) {
    test(`${tool} ${name} at every step count, given ${tool}'s sigma range`, () => {
      let cases = 0;
      for (const [steps, byName] of Object.entries(refs[tool].steps)) {
        if (!byName[name]) continue;
        const err = maxRelError(port(Number(steps), refs[tool]), byName[name]);
        worstPort = Math.max(worstPort, err);
        assert.ok(err <= TOL, `${steps} steps: ${err}`);
        cases++;
      }
      assert.ok(cases >= 7, `${cases} step counts`);
    });
  }
}

// Through SCHEDULES the sigma range is diffuse's model's: diffusers' float32 training sigmas.
// ComfyUI rounds float64 sigmas once and A1111 takes float32 sqrt of a float64 cumprod, so the
// ranges differ: sigma_min by 1.3e-5 (ComfyUI) relative, sigma_max by 3.9e-7 (ComfyUI) and 3.3e-7
// (A1111). A schedule that reaches sigma_min inherits that; the AYS tables do not depend on it.
const MODEL_TOL = 2e-5;
const VIA_SCHEDULES: [id: ScheduleId, tool: 'comfyui' | 'a1111', ref: string, tol: number][] = [
  ['kl_optimal', 'comfyui', 'kl_optimal', MODEL_TOL],
  ['linear_quadratic', 'comfyui', 'linear_quadratic', TOL],
  ['align_your_steps', 'comfyui', 'align_your_steps', TOL],
  ['align_your_steps_sdxl', 'comfyui', 'align_your_steps_sdxl', TOL],
  ['kl_optimal_a1111', 'a1111', 'kl_optimal', MODEL_TOL],
  ['align_your_steps_a1111', 'a1111', 'align_your_steps', TOL],
  ['polyexponential', 'a1111', 'polyexponential', MODEL_TOL],
];
const model = discreteSchedule(refs.config);
let worstModel = 0;
for (const [id, tool, ref, tol] of VIA_SCHEDULES) {
  test(`SCHEDULES.${id} on diffuse's SD 1.5 model matches ${tool}'s ${ref}`, () => {
    for (const [steps, byName] of Object.entries(refs[tool].steps)) {
      if (!byName[ref]) continue;
      const err = maxRelError(SCHEDULES[id](model, Number(steps), SAMPLERS.euler).sigmas, byName[ref]);
      worstModel = Math.max(worstModel, err);
      assert.ok(err <= tol, `${steps} steps: ${err}`);
    }
  });
}

// On the tool's own noise table (noise-tables.ts), what a run named in that tool's spelling gets,
// the difference in range is gone and the port tolerance holds.
for (const [id, tool, ref] of VIA_SCHEDULES) {
  test(`SCHEDULES.${id} on ${tool}'s own table matches ${tool}'s ${ref} to ${TOL}`, () => {
    const own = discreteSchedule(refs.config, { table: tool });
    for (const [steps, byName] of Object.entries(refs[tool].steps)) {
      if (!byName[ref]) continue;
      const err = maxRelError(SCHEDULES[id](own, Number(steps), SAMPLERS.euler).sigmas, byName[ref]);
      assert.ok(err <= TOL, `${steps} steps: ${err}`);
    }
  });
}

test('kl_optimal with one step is [sigma_max, 0] (ComfyUI divides 0 by 0 there)', () => {
  assert.equal([...klOptimalSigmas(1, 0.03, 14.6)], [Math.fround(Math.tan(Math.fround(Math.atan(14.6)))), 0]);
});

test('A1111 labels name A1111 variants, ids name ComfyUI ones, and labels round-trip', () => {
  assert.is(resolveSampler('Euler', 'KL Optimal').schedule, 'kl_optimal_a1111');
  assert.is(resolveSampler('Euler', 'Align Your Steps').schedule, 'align_your_steps_a1111');
  assert.is(resolveSampler('Euler', 'Polyexponential').schedule, 'polyexponential');
  assert.is(resolveSampler('euler', 'kl_optimal').schedule, 'kl_optimal');
  assert.is(resolveSampler('euler', 'align_your_steps').schedule, 'align_your_steps');
  assert.is(resolveSampler('DPM++ 2M Align Your Steps').schedule, 'align_your_steps_a1111');
  for (const id of ['kl_optimal', 'kl_optimal_a1111', 'align_your_steps', 'align_your_steps_sdxl', 'align_your_steps_a1111', 'linear_quadratic', 'polyexponential'] as const) {
    const { sampler, scheduleType } = a1111Name('dpmpp_2m', id);
    assert.is(resolveSampler(sampler, scheduleType).schedule, id, scheduleType);
    assert.is(resolveSampler(`${sampler} ${scheduleType}`).schedule, id, `${sampler} ${scheduleType}`);
  }
});

test('report', () => {
  console.log(`  more schedules: worst relative error ${worstPort.toExponential(2)} (own range), ${worstModel.toExponential(2)} (diffuse's model)`);
});

test.run();
