import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointError } from '../src/graphs/errors.js';
import { convertControlNet, ensureConvertedControlNet, readControlNetRecord } from '../src/graphs/controlnet-convert.js';
import { checkpointHashes } from '../src/graphs/converted-cache.js';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { openSession } from '../src/onnx/session.js';
import { ControlNet } from '../src/pipeline/controlnet.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { assertZeroResidualsChangeNothing, checkControlCase, type ControlCase } from './helpers/control-case.js';
import { scratch } from './helpers/scratch.js';
import { wrapInStateDict } from './helpers/torch-zip.js';
import { checkpointBytes, sha256, syntheticInput, writeCheckpoint, writeDiffusersFolder, type Recipe } from './helpers/synthetic-checkpoint.js';

/**
 * ControlNet weight files converted into the ONNX ControlNet the pipeline loads (src/graphs/controlnet.ts,
 * controlnet-detect.ts, controlnet-convert.ts) against diffusers 0.32 on the same weights
 * (tools/make_controlnet_file_fixture.py): an A1111/lllyasviel single file (`control_model.*`, F16) loaded by
 * ControlNetModel.from_single_file, the same file without the prefix, the same values as a diffusers folder
 * (from_pretrained), and tiny-sd-control's ControlNet shape as a diffusers folder run through
 * StableDiffusionControlNetPipeline with tiny-sd-control's UNet. Residuals to 1e-5 of the largest magnitude
 * (float32 sums in another order: about 1e-7 seen), latents to the pipeline references' usual 1e-5.
 */
const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'controlnet-files');

interface ResidualCase {
  name: string;
  sample: number[];
  context: number[];
  cond: number[];
  timestep: number;
  scale: number;
  residuals: Array<{ file: string; shape: number[] }>;
}
interface Model {
  name: 'sd1' | 'tiny' | 'sd1x2' | 'sd1-inpaint' | 'pth';
  sha256?: string;
  a1111OldHash?: string;
  cases: ResidualCase[];
  pipeline?: ControlCase[];
}
const manifest = readJson<{ models: Model[] }>(join(DIR, 'cases.json'));
const model = (name: Model['name']) => manifest.models.find((m) => m.name === name)!;
const SEEDS: Record<Model['name'], number> = { sd1: 21, tiny: 22, sd1x2: 23, 'sd1-inpaint': 24, pth: 25 };
const recipe = (name: string) => readJson<Recipe>(join(DIR, `${name}.recipe.json.gz`));
const layout = { layoutDir: DIR, tokenizers: {} };

/** The converted folder's graph on every reference case; returns the worst error seen (of max) and every residual. */
async function checkResiduals(dir: string, m: Model): Promise<{ worst: number; residuals: Float32Array[] }> {
  const path = join(dir, 'controlnet', 'model.onnx');
  const net = new ControlNet(await openSession(path, { device: 'cpu' }), path);
  let worst = 0;
  const residuals: Float32Array[] = [];
  try {
    for (const c of m.cases) {
      const seed = SEEDS[m.name];
      const cond = syntheticInput(seed, 102, c.cond).map((v) => (v + 1) / 2);
      const got = await net.residuals(syntheticInput(seed, 100, c.sample), c.sample as [number, number, number, number], c.timestep, syntheticInput(seed, 101, c.context), c.context as [number, number, number], cond, c.cond as [number, number, number, number], c.scale);
      assert.is(got.length, c.residuals.length, `${c.name}: residual count`);
      got.forEach((r, i) => {
        assert.equal([...r.dims], c.residuals[i]!.shape, `${c.name} residual ${i} shape`);
        const e = compare(r.data, readF32(join(DIR, c.residuals[i]!.file)));
        assert.ok(e.relToMax < TOLERANCE, `${m.name} ${c.name} residual ${i}: off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
        worst = Math.max(worst, e.relToMax);
        residuals.push(r.data);
      });
    }
  } finally {
    await net.release();
  }
  return { worst, residuals };
}

const files = suite('ControlNet files = diffusers ControlNetModel');
const temp = scratch(files);

files('an A1111/lllyasviel file (control_model.*, F16) = from_single_file; named and hashed as sd-webui-controlnet does', async () => {
  const work = temp();
  const path = join(work, 'control_sd1_tiny.safetensors');
  const bytes = checkpointBytes(recipe('sd1'));
  writeFileSync(path, bytes);
  assert.is(sha256(bytes), model('sd1').sha256, 'the file written from the recipe is the one the reference loaded');
  const hashes = await checkpointHashes(path, join(work, 'cache'));
  const record = await convertControlNet(path, join(work, 'out'), hashes);
  assert.equal([record.name, record.a1111OldHash, record.contextWidth], ['control_sd1_tiny', model('sd1').a1111OldHash, 128]);
  const { worst } = await checkResiduals(join(work, 'out'), model('sd1'));
  assert.ok(worst > 0, 'float32 sums in another order differ a little: the comparison sees the numbers');
});

files('a torch.save\'d .pth as lllyasviel\'s (control_model.* in a torch zip, F16) = from_single_file; the same tensors as .safetensors or wrapped in {\'state_dict\': ...} paint the same residuals', async () => {
  const work = temp();
  const pth = join(work, 'control_v11p_tiny.pth');
  const bytes = gunzipSync(readFileSync(join(DIR, 'pth.pth.gz')));
  writeFileSync(pth, bytes);
  assert.is(sha256(bytes), model('pth').sha256, 'the bytes torch.save wrote');
  const record = await convertControlNet(pth, join(work, 'out'), await checkpointHashes(pth, join(work, 'cache')));
  assert.equal([record.name, record.a1111OldHash, record.contextWidth], ['control_v11p_tiny', model('pth').a1111OldHash, 32]);
  const fromPth = await checkResiduals(join(work, 'out'), model('pth'));
  const safetensors = join(work, 'control_v11p_tiny.safetensors');
  writeFileSync(safetensors, checkpointBytes(recipe('pth')));
  const fromSafetensors = await checkResiduals(await ensureConvertedControlNet(safetensors, join(work, 'cache')), model('pth'));
  assert.equal(fromPth.residuals, fromSafetensors.residuals, 'the same weights from either file: the same numbers bit for bit');
  // A1111's {'state_dict': ...} wrapper around the same dict, as diffusers' from_single_file also reads it.
  const wrapped = join(work, 'control_v11p_tiny_wrapped.pth');
  writeFileSync(wrapped, wrapInStateDict(bytes));
  const fromWrapped = await checkResiduals(await ensureConvertedControlNet(wrapped, join(work, 'cache')), model('pth'));
  assert.equal(fromWrapped.residuals, fromPth.residuals, "{'state_dict': the same dict}: the same numbers bit for bit");
});

files('the same file without the control_model. prefix, and as a diffusers folder, give the same residuals', async () => {
  const work = temp();
  const bare = recipe('sd1');
  const path = join(work, 'bare.safetensors');
  writeFileSync(path, checkpointBytes({ ...bare, tensors: bare.tensors.map((t) => [t[0].replace(/^control_model\./, ''), ...t.slice(1)] as typeof t) }));
  await checkResiduals(await ensureConvertedControlNet(path, join(work, 'cache')), model('sd1'));
  const folder = writeDiffusersFolder(join(work, 'control-sd1-diffusers'), 'sd1', layout);
  const dir = await ensureConvertedControlNet(folder, join(work, 'cache'));
  assert.is(readControlNetRecord(dir)?.name, 'control-sd1-diffusers');
  await checkResiduals(dir, model('sd1'));
});

files('a diffusers folder of another shape (norm groups 8, a 2x control embedding) = from_pretrained', async () => {
  const work = temp();
  await checkResiduals(await ensureConvertedControlNet(writeDiffusersFolder(join(work, 'tiny'), 'tiny', layout), join(work, 'cache')), model('tiny'));
});

files('converted once: a second use finds the cached folder', async () => {
  const work = temp();
  const path = join(work, 'c.safetensors');
  writeFileSync(path, checkpointBytes(recipe('sd1')));
  const dir = await ensureConvertedControlNet(path, join(work, 'cache'));
  const made = statSync(join(dir, 'controlnet', 'model.onnx')).mtimeMs;
  assert.is(await ensureConvertedControlNet(path, join(work, 'cache')), dir);
  assert.is(statSync(join(dir, 'controlnet', 'model.onnx')).mtimeMs, made);
});

files('what is not an SD ControlNet is refused in one line naming the file', async () => {
  const work = temp();
  const base = recipe('sd1');
  const write = (name: string, r: Recipe): string => {
    const path = join(work, name);
    writeFileSync(path, checkpointBytes(r));
    return path;
  };
  const extra = (key: string, shape: number[]): Recipe => ({ ...base, tensors: [...base.tensors, [key, 'F16', shape, 'uniform', -3, 0]] });
  const bytes = checkpointBytes(base);
  const truncated = join(work, 'truncated.safetensors');
  writeFileSync(truncated, bytes.subarray(0, bytes.length >> 1));
  const noHint = write('nohint.safetensors', { ...base, tensors: base.tensors.filter((t) => !t[0].includes('input_hint_block')) });
  const incomplete = write('incomplete.safetensors', { ...base, tensors: base.tensors.filter((t) => !t[0].includes('zero_convs.3.')) });
  mkdirSync(join(work, 'empty'));
  const cases: Array<[string, RegExp]> = [
    [truncated, /not a valid safetensors file/],
    [noHint, /not a ControlNet .*pass a ControlNet file/],
    [write('sdxl.safetensors', extra('control_model.label_emb.0.0.weight', [256, 64])), /an SDXL ControlNet in the LDM layout .*diffusers' layout/],
    [write('diff.safetensors', extra('difference', [1])), /a "diff" ControlNet .*use the full ControlNet file/],
    [incomplete, /3 down-block outputs|zero convolutions/],
    [join(work, 'empty'), /holds no ControlNet weights/],
  ];
  for (const [path, says] of cases) {
    await ensureConvertedControlNet(path, join(work, 'cache')).then(
      () => assert.unreachable(`converted ${path}`),
      (err: unknown) => {
        assert.ok(err instanceof CheckpointError, `${path}: ${String(err)}`);
        assert.match((err as Error).message, says);
        assert.not.match((err as Error).message, /\n/);
      },
    );
  }
});

files.run();

const pipeline = suite('a converted ControlNet folder in the pipeline = StableDiffusionControlNetPipeline');
let assembled: AssembledModel;
let bundle: ModelBundle;
let controlDir: string;
const pipeTemp = scratch(pipeline);
pipeline.before(async () => {
  assembled = assembleModel('tiny-sd-control');
  controlDir = await ensureConvertedControlNet(writeDiffusersFolder(join(pipeTemp(), 'tiny'), 'tiny', layout), join(pipeTemp(), 'cache'));
  bundle = await loadModel(assembled.dir, { device: 'cpu', controlnets: [controlDir] });
});
pipeline.after(async () => {
  await bundle.release();
  assembled.remove();
});

for (const c of model('tiny').pipeline ?? []) pipeline(`${c.name}: final latents`, async () => void (await checkControlCase(bundle, c, controlDir, DIR, TOLERANCE)));

pipeline('--attention fused fuses the ControlNet\'s attention too (its unfused 512² scores grew its arena by gigabytes): the same references', async () => {
  const graphCache = join(pipeTemp(), 'graphs');
  const fused = await loadModel(assembled.dir, { device: 'cpu', controlnets: [controlDir], fuseAttention: true, graphCache });
  try {
    const entries = readdirSync(graphCache).filter((e) => e.startsWith('controlnet-fused-attention-'));
    assert.is(entries.length, 1, 'the ControlNet graph was edited once and cached');
    const edit = readJson<{ fused: number; skipped: number }>(join(graphCache, entries[0]!, 'edit.json'));
    assert.ok(edit.fused > 0 && edit.skipped === 0, `every attention block fused: ${JSON.stringify(edit)}`);
    for (const c of model('tiny').pipeline ?? []) await checkControlCase(fused, c, controlDir, DIR, TOLERANCE);
  } finally {
    await fused.release();
  }
});

pipeline.run();

const checkpoint = suite('a UNet built from a single-file checkpoint takes ControlNet residuals = StableDiffusionControlNetPipeline with from_single_file');
const ckptTemp = scratch(checkpoint);
let modelDir: string;
let sd1Control: string;
let graphCache: string;
checkpoint.before(async () => {
  const work = ckptTemp();
  modelDir = (await convertCheckpoint(writeCheckpoint(work, 'sd1'), join(work, 'onnx'), { precision: 'fp32' })).dir;
  sd1Control = await ensureConvertedControlNet(writeDiffusersFolder(join(work, 'sd1x2'), 'sd1x2', layout), join(work, 'cache'));
  graphCache = join(work, 'graphs');
});

checkpoint('residual inputs only when ControlNets load; the final latents of each case; zero residuals change nothing', async () => {
  const plain = await loadModel(modelDir, { device: 'cpu', graphCache });
  const controlled = await loadModel(modelDir, { device: 'cpu', graphCache, controlnets: [sd1Control] });
  try {
    assert.is(plain.unet.residualInputs.length, 0, 'a plain run keeps the graph without residual inputs');
    assert.equal(controlled.unet.residualInputs.map((i) => i.shape[1]), [32, 32, 32, 32, 64, 64, 64], 'conv_in, 2 resnets + downsampler at 32, 2 resnets at 64, mid at 64');
    for (const c of model('sd1x2').pipeline!) await checkControlCase(controlled, c, sd1Control, DIR, TOLERANCE);
    await assertZeroResidualsChangeNothing(plain, controlled, model('sd1x2').pipeline![0]!, sd1Control, DIR);
  } finally {
    await Promise.all([plain.release(), controlled.release()]);
  }
});

checkpoint('inpaint with a 9-channel checkpoint UNet: the ControlNet reads the 4 latent channels = StableDiffusionControlNetInpaintPipeline', async () => {
  const work = ckptTemp();
  const path = join(work, 'sd1-inpaint.safetensors');
  const bytes = checkpointBytes(recipe('sd1-inpaint'));
  writeFileSync(path, bytes);
  assert.is(sha256(bytes), model('sd1-inpaint').sha256, 'the file written from the recipe is the one the reference loaded');
  const inpaintDir = (await convertCheckpoint(path, join(work, 'onnx'), { precision: 'fp32' })).dir;
  const bundle = await loadModel(inpaintDir, { device: 'cpu', graphCache, withEncoder: true, controlnets: [sd1Control] });
  try {
    assert.is(bundle.unet.residualInputs.length, 7);
    for (const c of model('sd1-inpaint').pipeline!) await checkControlCase(bundle, c, sd1Control, DIR, TOLERANCE);
  } finally {
    await bundle.release();
  }
});

checkpoint.run();
