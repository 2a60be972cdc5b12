import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureConvertedControlNet, readControlNetRecord } from '../src/graphs/controlnet-convert.js';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { UsageError } from '../src/errors.js';
import { CheckpointError } from '../src/graphs/errors.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { assembleModel } from './helpers/assemble-model.js';
import { assertZeroResidualsChangeNothing, checkControlCase, controlRequest, type ControlCase } from './helpers/control-case.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { scratch } from './helpers/scratch.js';
import { checkpointBytes, sha256, writeDiffusersFolder, type Recipe } from './helpers/synthetic-checkpoint.js';

/**
 * An SDXL ControlNet (diffusers' layout, text_time addition, transformer depth per level) converted by the
 * ControlNet graph builder, run with tiny-sdxl (its optimum-exported UNet gets the residual inputs when
 * ControlNets load: src/onnx/control-residuals.ts) through the same pipeline code as SD 1.x ControlNet,
 * against diffusers' StableDiffusionXLControlNetPipeline and StableDiffusionXLControlNetImg2ImgPipeline on the
 * same components (tools/make_sdxl_controlnet_fixture.py): Euler, DPM++ 2M, DDIM; CFG with a negative prompt and
 * with the zeroed empty one, conditioning scales 0.5-1.3, guidance start/end, guess mode, two units, img2img at
 * strength 0.7 and 0.8; and a ControlNet of another shape with an SDXL UNet diffuse builds from a single-file
 * checkpoint (test/fixtures/sdxl-checkpoint), against the same pipeline on the modules diffusers' converters load.
 * Final latents to 1e-5 of the largest magnitude, the pipeline references' usual tolerance.
 */
const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'sdxl-controlnet');
const manifest = readJson<{ cases: ControlCase[]; checkpoint: { cases: ControlCase[] } }>(join(DIR, 'cases.json'));

const test = suite('SDXL ControlNet = StableDiffusionXLControlNetPipeline');
const temp = scratch(test);
let bundle: ModelBundle;
let controlDir: string;
let graphCache: string;

test.before(async () => {
  const work = temp();
  graphCache = join(work, 'graphs');
  controlDir = await ensureConvertedControlNet(writeDiffusersFolder(join(work, 'controlnet-sdxl-tiny'), 'controlnet', { layoutDir: DIR, tokenizers: {} }), join(work, 'cache'));
  bundle = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', graphCache, withEncoder: true, controlnets: [controlDir] });
});
test.after(async () => {
  await bundle.release();
});

test('the converted ControlNet reads SDXL text and the pooled text + time ids; the UNet takes its 5 residuals', () => {
  assert.is(readControlNetRecord(controlDir)?.contextWidth, 40, 'CLIP-L 16 + bigG 24');
  const net = bundle.controlNets![0]!.net;
  assert.ok(net.sdxl);
  assert.equal(bundle.unet.residualInputs.map((i) => i.shape[1]), [8, 8, 8, 16, 16], 'conv_in, resnet + downsampler at 8, resnet at 16, mid at 16');
});

for (const c of manifest.cases) {
  test(`${c.name}: final latents`, async () => {
    const e = await checkControlCase(bundle, c, controlDir, DIR, TOLERANCE, { promptWeighting: 'none' });
    console.log(`  ${c.name}: ${e.toExponential(2)} of max`);
  });
}

test('zero residuals change nothing on the optimum UNet with residual inputs added', async () => {
  const plain = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', graphCache });
  try {
    await assertZeroResidualsChangeNothing(plain, bundle, manifest.cases[0]!, controlDir, DIR, { promptWeighting: 'none' });
  } finally {
    await plain.release();
  }
});

test("its weights file alone is read with SDXL's 256-wide time ids: a ControlNet of another width is refused in one line asking for config.json", async () => {
  const work = temp();
  const folder = writeDiffusersFolder(join(work, 'cn'), 'controlnet', { layoutDir: DIR, tokenizers: {} });
  await ensureConvertedControlNet(join(folder, 'diffusion_pytorch_model.safetensors'), join(work, 'cache')).then(
    () => assert.unreachable('converted without its config'),
    (err: unknown) => {
      assert.ok(err instanceof CheckpointError, String(err));
      assert.match((err as Error).message, /diffusion_pytorch_model\.safetensors: add_embedding reads 60 numbers, fewer than six time ids of 256; give the ControlNet's config\.json/);
      assert.not.match((err as Error).message, /\n/);
    },
  );
});

test('an SDXL ControlNet with an SD 1.x model, and an SD 1.x ControlNet with SDXL: one line each', async () => {
  const work = temp();
  const sd1Control = await ensureConvertedControlNet(writeDiffusersFolder(join(work, 'tiny'), 'tiny', { layoutDir: join(FIXTURES, 'controlnet-files'), tokenizers: {} }), join(work, 'cache'));
  const sd1 = assembleModel('tiny-sd-control');
  const sd1Bundle = await loadModel(sd1.dir, { device: 'cpu', controlnets: [controlDir] });
  const sdxlBundle = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', graphCache, controlnets: [sd1Control] });
  const c = manifest.cases[0]!;
  try {
    for (const [b, model, says] of [
      [sd1Bundle, controlDir, /is an SDXL ControlNet and .* is an SD 1\.x\/2\.x model: use a ControlNet made for SD 1\.x\/2\.x/],
      [sdxlBundle, sd1Control, /is an SD 1\.x\/2\.x ControlNet and .* is an SDXL model: use a ControlNet made for SDXL/],
    ] as const) {
      await generate({ ...b, schedule: discreteSchedule(c.scheduler.config) }, await controlRequest(c, model, DIR, { promptWeighting: 'none' })).then(
        () => assert.unreachable('ran'),
        (err: unknown) => {
          assert.ok(err instanceof UsageError, String(err));
          assert.match((err as Error).message, says);
          assert.not.match((err as Error).message, /\n/);
        },
      );
    }
  } finally {
    await Promise.all([sd1Bundle.release(), sdxlBundle.release()]);
    sd1.remove();
  }
});

test.run();

const checkpoint = suite('an SDXL UNet built from a single-file checkpoint takes the residuals = StableDiffusionXLControlNetPipeline on its from_single_file modules');
const ckptTemp = scratch(checkpoint);

checkpoint('residual inputs only when ControlNets load; the final latents of each case; zero residuals change nothing', async () => {
  const work = ckptTemp();
  const ckptDir = join(FIXTURES, 'sdxl-checkpoint');
  const ckpt = readJson<{ name: string; sha256: string }>(join(ckptDir, 'cases.json'));
  const bytes = checkpointBytes(readJson<Recipe>(join(ckptDir, `${ckpt.name}.recipe.json.gz`)));
  assert.is(sha256(bytes), ckpt.sha256, 'the checkpoint written from its recipe');
  writeFileSync(join(work, `${ckpt.name}.safetensors`), bytes);
  const modelDir = (await convertCheckpoint(join(work, `${ckpt.name}.safetensors`), join(work, 'onnx'), { precision: 'fp32' })).dir;
  const control = await ensureConvertedControlNet(writeDiffusersFolder(join(work, 'checkpoint-cn'), 'checkpoint', { layoutDir: DIR, tokenizers: {} }), join(work, 'cache'));
  const graphs = join(work, 'graphs');
  const plain = await loadModel(modelDir, { device: 'cpu', graphCache: graphs });
  const controlled = await loadModel(modelDir, { device: 'cpu', graphCache: graphs, controlnets: [control] });
  try {
    assert.is(plain.unet.residualInputs.length, 0, 'a plain run keeps the graph without residual inputs');
    assert.equal(controlled.unet.residualInputs.map((i) => i.shape[1]), [32, 32, 32, 32, 64, 64, 64], 'conv_in, 2 resnets + downsampler at 32, 2 resnets at 64, mid at 64');
    for (const c of manifest.checkpoint.cases) {
      const e = await checkControlCase(controlled, c, control, DIR, TOLERANCE, { promptWeighting: 'none' });
      console.log(`  ${c.name}: ${e.toExponential(2)} of max`);
    }
    await assertZeroResidualsChangeNothing(plain, controlled, manifest.checkpoint.cases[0]!, control, DIR, { promptWeighting: 'none' });
  } finally {
    await Promise.all([plain.release(), controlled.release()]);
  }
});

checkpoint.run();
