import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cosine } from '../bench/metrics.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { defaultOpset } from '../src/onnx/node-builders.js';
import { ModelProto } from '../src/onnx/proto.js';
import { quantizeInt8 } from '../src/onnx/quantize-int8.js';
import { TokenMergingError, applyTokenMerging } from '../src/onnx/token-merging.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type LoadOptions, type ModelBundle } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';
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

/**
 * int8 on the merged UNet: the quantizer takes the MatMuls with weights (the blocks' projections), not
 * the merge's activation products. With MatMul-only int8 (no calibration) the merged UNet stays within
 * 1e-2 of max of tomesd's float output (seen 4.0e-3 to 7.0e-3), while the unmerged one is 2.2e-2 to
 * 4.1e-2 away: the merge survives quantization. Formats u8u8 and u8s7, whose products are exact on
 * every x86 CPU (u8s8 saturates without VNNI; on VNNI it gives u8u8's numbers).
 */
const INT8_MATMUL_TOLERANCE = 1e-2;
for (const c of manifest.unet_cases.filter((u) => u.ratio === 0.5)) {
  for (const format of ['u8u8', 'u8s7'] as const) {
    Edit(`${c.name}: int8 MatMuls (${format}) on the merged UNet stay at tomesd's output`, async () => {
      const want = readF32(join(DIR, c.out_sample.file));
      const unetDir = join(TINY_SD, 'unet');
      const merged = applyTokenMerging(source, c.ratio);
      const quantized = quantizeInt8(merged.model, unetDir, undefined, format);
      assert.ok(quantized.matmuls > 0, 'the projections were quantized');
      const err = compare(await runUnet(quantized.model, c), want);
      assert.ok(err.relToMax < INT8_MATMUL_TOLERANCE, `out_sample off by ${err.relToMax} of max`);
      const plain = compare(await runUnet(quantizeInt8(source, unetDir, undefined, format).model, c), want);
      assert.ok(plain.relToMax > 2 * INT8_MATMUL_TOLERANCE, `the unmerged int8 UNet is ${plain.relToMax} of max from the reference`);
    });
  }
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

/**
 * With --quantize the int8 graphs are built from the merged UNet. MatMul-only int8 keeps the
 * latents at tomesd's (cosine seen 0.99992-0.999999); calibrated int8 costs on the merged model what
 * it costs on the plain one (tiny-sd, these seeds: cosine 0.928-0.999 to the float reference, merged or
 * not), so it is held to test/quantize.test.ts's kind of floor, and to having merged.
 */
for (const c of manifest.pipeline_cases) {
  Pipeline(`${c.name} with --quantize int8-matmul and int8: the int8 graphs are the merged UNet's`, async () => {
    const deepCache = c.deep_cache ? { deepCache: true } : {};
    const schedule = discreteSchedule(c.scheduler.config);
    const want = readF32(join(DIR, c.final_latents.file));
    const matmul = await generate({ ...(await bundle({ tokenMerging: c.ratio, quantize: 'int8-matmul', ...deepCache })), schedule }, requestFor(c));
    assert.ok(cosine(matmul.latents, want) >= 0.9999, `int8-matmul: cosine ${cosine(matmul.latents, want)} to tomesd's latents`);
    const unmerged = await generate({ ...(await bundle({ quantize: 'int8-matmul', ...deepCache })), schedule }, requestFor(c));
    assert.ok(compare(matmul.latents, want).relToMax < compare(unmerged.latents, want).relToMax / 1.5, 'merged int8 is nearer tomesd than unmerged int8');
    const int8 = await generate({ ...(await bundle({ tokenMerging: c.ratio, quantize: 'int8', ...deepCache })), schedule }, requestFor(c));
    assert.ok(cosine(int8.latents, want) >= 0.9, `int8: cosine ${cosine(int8.latents, want)}`);
  });
}

Pipeline('the int8 UNets in the cache are quantized from the token-merged graph: int8 and int8-matmul', () => {
  const edits = listFiles(graphCache)
    .filter((f) => /^unet-int8-[^/]+\/source\.json$/.test(f))
    .filter((f) => /\/unet-token-merging-[^/]+\/model\.onnx$/.test(readJson<{ source: string }>(join(graphCache, f)).source))
    .map((f) => readJson<{ convs: number; matmuls: number }>(join(graphCache, f.replace('source.json', 'edit.json'))));
  assert.ok(edits.some((e) => e.convs > 0 && e.matmuls > 0), `a calibrated int8 UNet from a merged one: ${JSON.stringify(edits)}`);
  assert.ok(edits.some((e) => e.convs === 0 && e.matmuls > 0), `an int8-matmul UNet from a merged one: ${JSON.stringify(edits)}`);
});

Pipeline.run();

const Cli = suite('--token-merging on the command line');

Cli("recorded as A1111's 'Token merging ratio' and re-run by --from; 0 writes the plain image", () => assertRecordedOption('--token-merging', '0.5', '0', 'Token merging ratio'));

Cli('with --quantize int8 and --deep-cache: the image records all three', () => {
  const dir = tempDir();
  const r = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--steps', '3', '--quiet', '--token-merging', '0.5', '--quantize', 'int8', '--deep-cache', '2', '-o', join(dir, 'x.png')]);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(join(dir, 'x.png')));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  assert.is(meta.parameters.extra['Token merging ratio'], '0.5', JSON.stringify(meta.parameters.extra));
  assert.match(JSON.stringify(meta.parameters.extra), /int8/);
});

Cli.run();
