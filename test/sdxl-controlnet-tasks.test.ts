import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureConvertedControlNet } from '../src/graphs/controlnet-convert.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { assembleSdxl, type AssembledModel } from './helpers/assemble-model.js';
import { checkControlCase, type ControlCase } from './helpers/control-case.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { scratch } from './helpers/scratch.js';
import { writeDiffusersFolder } from './helpers/synthetic-checkpoint.js';

/**
 * The SDXL ControlNet of test/sdxl-controlnet.test.ts with the other SDXL models (tools/make_sdxl_controlnet_fixture.py):
 * - inpaint on tiny-sdxl-inpaint's 9-channel UNet (its optimum export gets the residual inputs as tiny-sdxl's does; the
 *   ControlNet reads the 4 latent channels) = StableDiffusionXLControlNetInpaintPipeline: Euler, DDIM, DPM++ 2M, strength
 *   0.7-1.0, guess mode, start/end, two units;
 * - the refiner (tiny-sdxl-refiner) from a switch on, as A1111 + sd-webui-controlnet run it: the units steer the base's
 *   steps only, their start/end fractions of every step = StableDiffusionXLControlNetPipeline to denoising_end, then
 *   StableDiffusionXLImg2ImgPipeline from denoising_start.
 * Final latents to 1e-5 of the largest magnitude, as every pipeline reference.
 */
const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'sdxl-controlnet');
type RefinerCase = ControlCase & { refiner_switch: number; refiner_unet_timesteps: number[] };
const manifest = readJson<{ inpaint: ControlCase[]; refiner: RefinerCase[] }>(join(DIR, 'cases.json'));

const test = suite('SDXL ControlNet inpaint and refiner = diffusers');
const temp = scratch(test);
const models: AssembledModel[] = [];
let controlDir: string;
let graphCache: string;

test.before(async () => {
  const work = temp();
  graphCache = join(work, 'graphs');
  controlDir = await ensureConvertedControlNet(writeDiffusersFolder(join(work, 'controlnet-sdxl-tiny'), 'controlnet', { layoutDir: DIR, tokenizers: {} }), join(work, 'cache'));
});
test.after(() => {
  for (const m of models) m.remove();
});

test('inpaint on the 9-channel UNet: each case = StableDiffusionXLControlNetInpaintPipeline', async () => {
  assert.ok(new Set(manifest.inpaint.map((c) => c.scheduler.class)).size >= 3, 'Euler, DDIM and DPM++ 2M');
  const inpaint = assembleSdxl('tiny-sdxl-inpaint');
  models.push(inpaint);
  const bundle = await loadModel(inpaint.dir, { device: 'cpu', graphCache, withEncoder: true, controlnets: [controlDir] });
  try {
    assert.is(bundle.unet.inChannels, 9);
    assert.equal(bundle.unet.residualInputs.map((i) => i.shape[1]), [8, 8, 8, 16, 16]);
    for (const c of manifest.inpaint) {
      const e = await checkControlCase(bundle, c, controlDir, DIR, TOLERANCE, { promptWeighting: 'none' });
      console.log(`  ${c.name}: ${e.toExponential(2)} of max`);
    }
  } finally {
    await bundle.release();
  }
});

test('with a refiner the units steer the base to the switch: each case = the ControlNet pipeline to denoising_end, the refiner from denoising_start', async () => {
  const refinerModel = assembleSdxl('tiny-sdxl-refiner');
  models.push(refinerModel);
  const refiner = await loadModel(refinerModel.dir, { device: 'cpu', graphCache });
  const refined: ModelBundle = { ...(await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', graphCache, controlnets: [controlDir] })), refiner };
  try {
    assert.is(refiner.unet.residualInputs.length, 0, 'the refiner runs its plain graph');
    for (const c of manifest.refiner) {
      assert.ok(c.refiner_unet_timesteps.length > 0, `${c.name}: the refiner ran`);
      const e = await checkControlCase(refined, c, controlDir, DIR, TOLERANCE, { promptWeighting: 'none', refinerSwitch: c.refiner_switch });
      console.log(`  ${c.name}: ${e.toExponential(2)} of max`);
    }
  } finally {
    await Promise.all([refined.release(), refiner.release()]);
  }
});

test.run();
