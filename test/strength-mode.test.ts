import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { discreteSchedule, planSampling } from '../src/schedulers/index.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

/**
 * --strength-mode a1111: AUTOMATIC1111's img2img cut (modules/sd_samplers_common.py
 * setup_img2img_steps and sample_img2img): t_enc = int(min(strength, 0.999) * steps), the sampler
 * walks sigmas[steps - t_enc - 1:], so t_enc + 1 steps where diffusers runs int(steps * strength).
 */
const model = discreteSchedule({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000 });
const plan = (strength?: number, strengthMode?: 'diffusers' | 'a1111') =>
  planSampling({ model, sampler: 'euler_a', schedule: 'karras', steps: 20, ...(strength !== undefined ? { strength } : {}), ...(strengthMode ? { strengthMode } : {}) });

test("A1111's cut runs t_enc + 1 steps from sigmas[steps - t_enc - 1]; diffusers' int(steps x strength)", () => {
  const full = plan().sigmas;
  for (const [strength, a1111Steps, diffusersSteps] of [[0.75, 16, 15], [0.5, 11, 10], [0.33, 7, 6], [1, 20, 20], [0.02, 1, 0]] as const) {
    const a = plan(strength, 'a1111').sigmas;
    assert.is(a.length - 1, a1111Steps, `a1111 at ${strength}`);
    assert.equal(Array.from(a), Array.from(full.slice(full.length - a.length)), `a1111 at ${strength}: the schedule's tail`);
    assert.is(plan(strength, 'diffusers').sigmas.length - 1, diffusersSteps, `diffusers at ${strength}`);
  }
});

test('img2img --strength-mode a1111 is recorded; an unknown mode is a usage error', () => {
  const dir = tempDir();
  const init = join(FIXTURES, 'pipeline', 'img2img.ddim-s0.6.0.png');
  const base = ['img2img', 'a fox', '-i', init, '--model', TINY_SD, '--steps', '4', '--quiet'];
  const ok = diffuse([...base, '--strength-mode', 'a1111', '-o', join(dir, 'a.png')]);
  assert.is(ok.status, 0, ok.stderr);
  const meta = readGenerationMetadata(readFileSync(join(dir, 'a.png')));
  assert.ok(meta.kind === 'a1111' && meta.parameters.extra['Strength mode'] === 'a1111', JSON.stringify(meta));
  const bad = diffuse([...base, '--strength-mode', 'comfy', '-o', join(dir, 'b.png')]);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--strength-mode must be one of diffusers, a1111/);
});

test.run();
