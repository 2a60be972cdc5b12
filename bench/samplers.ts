/**
 * How much of a 512x512 step the sampler arithmetic itself costs: every sampler runs 20 steps
 * on SD-sized latents (4x64x64) with a denoiser that does no work beyond allocating its output,
 * so what is timed is the sampler's own element-wise maths and noise draws. The reference is
 * the machine's floor for one SD 1.5 CFG step at 512x512 (~3.8 s, issue 7's measured operator
 * rates); the issue asks for under 1%.
 */
import { createRng } from '../src/rng/index.js';
import { discreteSchedule, planSampling, SAMPLER_IDS, wrapDenoiser } from '../src/schedulers/index.js';

const FLOOR_STEP_MS = 3800;
const STEPS = 20;
const SIZE = 4 * 64 * 64;
const SD15 = { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1, set_alpha_to_one: false, prediction_type: 'epsilon' };

async function main(): Promise<void> {
  const model = discreteSchedule(SD15);
  const rows: { sampler: string; calls: number; msPerStep: number; share: string }[] = [];
  for (const sampler of SAMPLER_IDS) {
    const schedule = sampler === 'lcm' ? 'normal' : 'karras';
    let plan;
    try {
      plan = planSampling({ model, sampler, schedule, steps: STEPS });
    } catch {
      continue;
    }
    const rng = createRng('cpu', 1);
    let calls = 0;
    // The plan's model and diffusers' grid, with a network call that costs nothing.
    const denoise = wrapDenoiser(plan.denoiser(async (xIn) => xIn), async (x) => {
      calls++;
      return x.map((v) => v * 0.5);
    });
    const x = plan.startLatents(rng.randn(SIZE));
    const started = performance.now();
    await plan.sampler(denoise, x, plan.sigmas, { noise: () => rng.randn(SIZE) });
    const ms = (performance.now() - started) / STEPS;
    rows.push({ sampler, calls, msPerStep: Number(ms.toFixed(2)), share: `${((ms / FLOOR_STEP_MS) * 100).toFixed(3)}%` });
  }
  console.table(rows);
  const worst = Math.max(...rows.map((r) => r.msPerStep));
  console.log(`worst sampler overhead: ${worst.toFixed(2)} ms per step = ${((worst / FLOOR_STEP_MS) * 100).toFixed(3)}% of a ${FLOOR_STEP_MS} ms step`);
}

await main();
