import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixDim, wrapInputCast } from '../src/onnx/graph-edit.js';
import { ElemType, Message, ModelProto } from '../src/onnx/proto.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { GenerationResult } from '../src/pipeline/types.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare } from './helpers/fixtures.js';
import { makeVariant, type Variant } from './helpers/variants.js';

/**
 * The pipeline adapts to what each graph declares. Each variant is the tiny fixture rewritten the
 * way another exporter would have written it (test/helpers/variants.ts), run through the real
 * loadModel + generate and compared with the unmodified fixture on the same request.
 */

function onnxFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return onnxFiles(path);
    return e.name.endsWith('.onnx') ? [path] : [];
  });
}

test('proto: decoding and re-encoding every fixture graph is byte-identical', () => {
  const files = onnxFiles(FIXTURES);
  assert.ok(files.length >= 4, `found ${files.length} .onnx fixtures`);
  for (const file of files) {
    const bytes = new Uint8Array(readFileSync(file));
    const model = ModelProto.decode(bytes);
    // Walk down to every node's attributes so the lazily decoded children are really exercised.
    const nodes = model.graph.nodes;
    for (const node of nodes) void node.attributes.map((a) => a.name);
    assert.ok(nodes.length > 0, `${file} has nodes`);
    assert.ok(Buffer.from(model.encode()).equals(bytes), `${file} round-trips`);
  }
});

test('proto: an edited field is re-encoded, untouched siblings stay as they were', () => {
  const bytes = new Uint8Array(readFileSync(join(TINY_SD, 'unet/model.onnx')));
  const model = ModelProto.decode(bytes);
  const timestep = model.graph.inputs.find((i) => i.name === 'timestep')!;
  timestep.tensorType!.elemType = 7;
  const again = ModelProto.decode(model.encode()).graph;
  assert.is(again.inputs.find((i) => i.name === 'timestep')!.tensorType!.elemType, 7);
  assert.is(again.inputs.find((i) => i.name === 'sample')!.tensorType!.elemType, 1);
  assert.equal(again.nodes.length, model.graph.nodes.length);
  // int64 varints with the sign bit set take ten bytes and read back negative.
  const m = new Message([]);
  m.setInt(3, -5n);
  assert.is(Message.decode(m.encode()).int(3), -5n);
});

test('graph-edit: names a missing value or axis instead of writing a broken graph', () => {
  const unet = new Uint8Array(readFileSync(join(TINY_SD, 'unet/model.onnx')));
  assert.throws(() => wrapInputCast(unet, 'latents', ElemType.FLOAT16), /no input 'latents'.*sample, timestep, encoder_hidden_states/);
  assert.throws(() => fixDim(unet, 'timestep', 1, 1), /no axis 1 \(rank 1\)/);
});

const REQUEST = {
  prompt: 'a lighthouse on a cliff',
  negativePrompt: 'blurry',
  steps: 4,
  // > 1: the UNet sees uncond and cond together, a batch of 2 per image.
  cfgScale: 7.5,
  cfgRescale: 0,
  seed: 42,
  rng: 'cpu' as const,
  seedMode: 'diffusers' as const,
  // Leading spacing gives integer timesteps, which an int64 timestep carries exactly.
  sampler: 'euler' as const,
  schedule: 'normal' as const,
  width: 32,
  height: 32,
};

async function run(dir: string, batchSize: number): Promise<GenerationResult> {
  const bundle = await loadModel(dir, { device: 'cpu', threads: 1 });
  try {
    return await generate(bundle, { ...REQUEST, batchSize });
  } finally {
    await bundle.release();
  }
}

const baseRuns = new Map<number, Promise<GenerationResult>>();
function base(batchSize: number): Promise<GenerationResult> {
  if (!baseRuns.has(batchSize)) baseRuns.set(batchSize, run(TINY_SD, batchSize));
  return baseRuns.get(batchSize)!;
}

/** Runs a variant at batch 1 and 2 and hands both runs with their base runs to `check`. */
async function withVariant(
  variant: Variant,
  check: (dir: string, got: GenerationResult, want: GenerationResult, batch: number) => Promise<void> | void,
): Promise<void> {
  const v = makeVariant(variant);
  try {
    for (const batch of [1, 2]) await check(v.dir, await run(v.dir, batch), await base(batch), batch);
  } finally {
    v.dispose();
  }
}

function assertIdentical(got: GenerationResult, want: GenerationResult, label: string): void {
  assert.ok(Buffer.from(got.latents.buffer).equals(Buffer.from(want.latents.buffer)), `${label}: latents identical`);
  got.images.forEach((img, i) => {
    assert.ok(Buffer.from(img.image.data).equals(Buffer.from(want.images[i]!.image.data)), `${label}: image ${i} identical`);
  });
}

async function inputType(path: string, name: string): Promise<string> {
  const session = await ort.InferenceSession.create(path);
  try {
    const meta = session.inputMetadata.find((m) => m.name === name);
    return meta?.isTensor ? meta.type : 'none';
  } finally {
    await session.release();
  }
}

test('int64 timestep of shape [1]: identical to the float32 graph on integer timesteps', async () => {
  await withVariant('timestep-int64', async (dir, got, want, batch) => {
    assertIdentical(got, want, `batch ${batch}`);
    const unet = join(dir, 'unet/model.onnx');
    assert.is(await inputType(unet, 'timestep'), 'int64');
    // ORT refuses a feed of the wrong dtype, so the runs above did feed int64.
    const session = await ort.InferenceSession.create(unet);
    try {
      const feeds = {
        sample: new ort.Tensor('float32', new Float32Array(4 * 16 * 16), [1, 4, 16, 16]),
        timestep: new ort.Tensor('float32', new Float32Array([999]), [1]),
        encoder_hidden_states: new ort.Tensor('float32', new Float32Array(77 * 32), [1, 77, 32]),
      };
      let refused = false;
      await session.run(feeds).catch(() => (refused = true));
      assert.ok(refused, 'a float32 timestep is refused');
    } finally {
      await session.release();
    }
  });
});

test('int64 input_ids: identical to the int32 graph', async () => {
  await withVariant('ids-int64', async (dir, got, want, batch) => {
    assert.is(await inputType(join(dir, 'text_encoder/model.onnx'), 'input_ids'), 'int64');
    assertIdentical(got, want, `batch ${batch}`);
  });
});

/**
 * float16 I/O rounds the UNet's inputs and output and the decoder's to half precision (relative
 * 2^-12 ≈ 2.4e-4 at most per rounding); the graph itself still computes in float32. Guidance
 * amplifies the rounding of the two predictions: u + s(c − u) carries up to (|1 − s| + s) = 14
 * times it at s = 7.5, and Euler integrates the prediction over sigma 14.6 → 0. Observed here:
 * 1.15e-3 (batch 1) and 0.96e-3 (batch 2) of the latents' largest magnitude; 3e-3 leaves room for
 * other CPUs' kernels while any real fault (a wrong cast, half bits read as float) is O(1).
 * The fp16 image output adds ≤ 2.4e-4 absolute on [-1, 1], 1/16 of an 8-bit level, so pixels
 * move by the latents' drift alone: observed at most 1 level.
 */
const FP16_LATENT_TOLERANCE = 3e-3;
const FP16_PIXEL_LEVELS = 2;

test('float16 inputs and outputs (UNet and VAE decoder): equal within half-precision rounding', async () => {
  await withVariant('fp16-io', async (dir, got, want, batch) => {
    assert.is(await inputType(join(dir, 'unet/model.onnx'), 'sample'), 'float16');
    assert.is(await inputType(join(dir, 'vae_decoder/model.onnx'), 'latent_sample'), 'float16');
    const err = compare(got.latents, want.latents);
    assert.ok(err.relToMax > 0, 'the float16 path changes the numbers (it is really taken)');
    assert.ok(err.relToMax < FP16_LATENT_TOLERANCE, `batch ${batch}: latents off by ${err.relToMax} of max`);
    got.images.forEach((img, i) => {
      const pixels = compare(img.image.data, want.images[i]!.image.data);
      assert.ok(pixels.maxAbs <= FP16_PIXEL_LEVELS, `batch ${batch} image ${i} differs by ${pixels.maxAbs} levels`);
    });
  });
});

test('UNet with batch fixed to 1: called per sample, identical to the dynamic-batch graph', async () => {
  await withVariant('fixed-batch', async (dir, got, want, batch) => {
    // Batch 2 with CFG is a UNet batch of 4, run as four calls of 1.
    const bundle = await loadModel(dir, { device: 'cpu' });
    assert.is(bundle.unet.fixedBatch, 1);
    await bundle.release();
    assertIdentical(got, want, `batch ${batch}`);
  });
});

test.run();
