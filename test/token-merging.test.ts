import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultOpset } from '../src/onnx/node-builders.js';
import { ModelProto } from '../src/onnx/proto.js';
import { TokenMergingError, applyTokenMerging } from '../src/onnx/token-merging.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type LoadOptions, type ModelBundle } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { assertRecordedOption } from './helpers/recorded-option.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';

/**
 * `--token-merging RATIO` against the tomesd package (0.1.3) applied as A1111 applies it, on the
 * tiny-sd weights (tools/make_tome_refs.py): single UNet calls at two latent sizes and two
 * ratios, and diffusers' pipeline with Euler (one case with DeepCache on top). Held to the bound
 * of the plain pipeline tests, 1e-5 of the largest value; tomesd moves each reference by 9e-3 to
 * 4e-2 of max from the unmerged model, so a wrong match, a wrong block or no merge could not pass.
 */
const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'tome');
const SOURCE = join(TINY_SD, 'unet/model.onnx');

interface ArrayRef {
  file: string;
  shape: number[];
}
interface UnetCase {
  name: string;
  latent_height: number;
  latent_width: number;
  ratio: number;
  timestep: number;
  sample: ArrayRef;
  change_vs_unmerged: number;
  out_sample: ArrayRef;
}
interface PipelineCase extends ReferenceCase {
  ratio: number;
  deep_cache: number | null;
  final_latents: ArrayRef;
}
interface Manifest {
  encoder_hidden_states: ArrayRef;
  block_tokens_at_16x16: Record<string, number>;
  unet_cases: UnetCase[];
  pipeline_cases: PipelineCase[];
}

const manifest = readJson<Manifest>(join(DIR, 'cases.json'));
const source = new Uint8Array(readFileSync(SOURCE));
const scratch = mkdtempSync(join(tmpdir(), 'diffuse-tome-'));

async function runUnet(model: Uint8Array, c: UnetCase): Promise<Float32Array> {
  const path = join(scratch, 'unet.onnx');
  writeFileSync(path, model);
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const out = await session.run({
      sample: new ort.Tensor('float32', readF32(join(DIR, c.sample.file)), c.sample.shape),
      timestep: new ort.Tensor('float32', new Float32Array([c.timestep]), [1]),
      encoder_hidden_states: new ort.Tensor('float32', readF32(join(DIR, manifest.encoder_hidden_states.file)), manifest.encoder_hidden_states.shape),
    });
    return out.out_sample!.data as Float32Array;
  } finally {
    await session.release();
  }
}

const Edit = suite('token merging graph edit = tomesd on the UNet');

Edit('merges the blocks tomesd merges: the full-resolution ones, not the mid block', () => {
  const tokens = Object.values(manifest.block_tokens_at_16x16);
  const edited = applyTokenMerging(source, 0.5);
  assert.is(edited.merged, tokens.filter((n) => n === 16 * 16).length);
  assert.is(edited.lower, tokens.filter((n) => n < 16 * 16).length);
  assert.is(edited.merged, 3);
  assert.ok(defaultOpset(ModelProto.decode(edited.model)) >= 16, "ScatterElements' reduction needs opset 16");
});

const unmerged = new Map<string, Float32Array>();
for (const c of manifest.unet_cases) {
  Edit(`${c.name}: latent ${c.latent_height}x${c.latent_width}, ratio ${c.ratio}, batch 2`, async () => {
    const want = readF32(join(DIR, c.out_sample.file));
    const got = await runUnet(applyTokenMerging(source, c.ratio).model, c);
    const err = compare(got, want);
    assert.ok(err.relToMax < TOLERANCE, `out_sample off by ${err.maxAbs} (${err.relToMax} of max)`);
    const key = c.sample.file;
    if (!unmerged.has(key)) unmerged.set(key, await runUnet(source, c));
    assert.ok(compare(unmerged.get(key)!, want).relToMax > 100 * TOLERANCE, 'the unmerged UNet is far from the reference');
  });
}

Edit('a graph that is not a UNet, has no full-resolution self-attention (SDXL) or is float16 is refused with a typed error', () => {
  const text = new Uint8Array(readFileSync(join(TINY_SD, 'text_encoder/model.onnx')));
  assert.throws(() => applyTokenMerging(text, 0.5), (err: unknown) => err instanceof TokenMergingError && /cannot apply --token-merging to this UNet: the graph has no input named sample/.test((err as Error).message));
  const vae = new Uint8Array(readFileSync(join(TINY_SD, 'vae_encoder/model.onnx')));
  assert.throws(() => applyTokenMerging(vae, 0.5), (err: unknown) => err instanceof TokenMergingError && /no self-attention block works at the latent's resolution/.test((err as Error).message));
  // SDXL's first level has no attention: tomesd with max_downsample 1 would merge nothing.
  const sdxl = new Uint8Array(readFileSync(join(FIXTURES, 'tiny-sdxl/unet/model.onnx')));
  assert.throws(() => applyTokenMerging(sdxl, 0.5), (err: unknown) => err instanceof TokenMergingError && /no self-attention block works at the latent's resolution \(\d+ at lower resolutions/.test((err as Error).message));
  const half = new Uint8Array(readFileSync(join(FIXTURES, 'tiny-sdxl-fp16/unet/model.onnx')));
  assert.throws(() => applyTokenMerging(half, 0.5), (err: unknown) => err instanceof TokenMergingError && /not float32/.test((err as Error).message));
});

Edit.after(() => rmSync(scratch, { recursive: true, force: true }));
Edit.run();

const Pipeline = suite('--token-merging = tomesd on diffusers');
const graphCache = mkdtempSync(join(tmpdir(), 'diffuse-tome-graphs-'));
const bundles = new Map<string, ModelBundle>();
const bundle = async (options: Partial<LoadOptions>): Promise<ModelBundle> => {
  const key = JSON.stringify(options);
  if (!bundles.has(key)) bundles.set(key, await loadModel(TINY_SD, { device: 'cpu', graphCache, ...options }));
  return bundles.get(key)!;
};
Pipeline.after(async () => {
  await Promise.all([...bundles.values()].map((b) => b.release()));
  rmSync(graphCache, { recursive: true, force: true });
});

function requestFor(c: PipelineCase) {
  return referenceRequest(c, { promptWeighting: 'none', ...(c.deep_cache ? { deepCache: c.deep_cache } : {}) });
}

for (const c of manifest.pipeline_cases) {
  Pipeline(`${c.name}: Euler, ${c.num_inference_steps} steps, ratio ${c.ratio}${c.deep_cache ? `, DeepCache ${c.deep_cache}` : ''}`, async () => {
    const deepCache = c.deep_cache ? { deepCache: true } : {};
    const schedule = discreteSchedule(c.scheduler.config);
    const merged = await bundle({ tokenMerging: c.ratio, ...deepCache });
    const result = await generate({ ...merged, schedule }, requestFor(c));
    const want = readF32(join(DIR, c.final_latents.file));
    const err = compare(result.latents, want);
    assert.ok(err.relToMax < TOLERANCE, `final latents off by ${err.maxAbs} (${err.relToMax} of max)`);
    const plain = await generate({ ...(await bundle(deepCache)), schedule }, requestFor(c));
    assert.ok(compare(plain.latents, want).relToMax > 100 * TOLERANCE, 'the unmerged run is far from the reference');
  });
}

Pipeline('fused attention on the merged UNet meets the same bound', async () => {
  const c = manifest.pipeline_cases[0]!;
  const merged = await bundle({ tokenMerging: c.ratio, fuseAttention: true });
  const result = await generate({ ...merged, schedule: discreteSchedule(c.scheduler.config) }, requestFor(c));
  const err = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
  assert.ok(err.relToMax < TOLERANCE, `final latents off by ${err.maxAbs} (${err.relToMax} of max)`);
});

Pipeline('with --quantize: refused before loading, in one line', async () => {
  try {
    await loadModel(TINY_SD, { device: 'cpu', graphCache, tokenMerging: 0.5, quantize: 'int8-matmul' });
    assert.unreachable('should refuse');
  } catch (err) {
    assert.match((err as Error).message, /--token-merging does not combine with --quantize yet/);
  }
});

Pipeline.run();

const Cli = suite('--token-merging on the command line');

Cli("recorded as A1111's 'Token merging ratio' and re-run by --from; 0 writes the plain image", () => assertRecordedOption('--token-merging', '0.5', '0', 'Token merging ratio'));

Cli('with --quantize int8: one line, exit 2, no file', () => {
  const dir = tempDir();
  const r = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--steps', '2', '--quiet', '--token-merging', '0.5', '--quantize', 'int8', '-o', join(dir, 'x.png')]);
  assert.is(r.status, 2, r.stderr);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--token-merging does not combine with --quantize/);
});

Cli.run();
