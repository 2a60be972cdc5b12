import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scratch } from './helpers/scratch.js';
import * as ort from 'onnxruntime-node';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { editTextEncoder } from '../src/onnx/text-encoder-edit.js';
import { fuseAttention } from '../src/onnx/fuse-attention.js';
import { compare, readF32 } from './helpers/fixtures.js';
import { GRAPH_FIXTURES, graphFixture, readRecipe, syntheticInput, writeCheckpoint, writeDiffusersFolder, type ArrayRef } from './helpers/synthetic-checkpoint.js';

/**
 * Each graph built from a single-file checkpoint against the torch module diffusers/transformers
 * load from the same file (through diffusers' own single-file converters), on the same inputs,
 * in float32: SD 1.x, SD 2.x (OpenCLIP, linear projections, 64-wide heads), 9-channel
 * inpainting and 5-channel depth UNets, files stored as F16, BF16 and F32, a torch .ckpt and a
 * diffusers folder (configs and diffusers' names instead of the LDM layout). Held to 1e-5 of
 * the reference's largest magnitude: ONNX Runtime and torch sum in different orders (seen:
 * text encoder <= 7.1e-7, UNet <= 2.7e-6, VAE <= 1.8e-6).
 */
const TOLERANCE = 1e-5;

const run = async (path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> => {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  try {
    const out = await session.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await session.release();
  }
};

function near(what: string, actual: Float32Array, expected: ArrayRef): void {
  const e = compare(actual, readF32(join(GRAPH_FIXTURES, expected.file)));
  assert.ok(e.relToMax < TOLERANCE, `${what}: off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
}

const float = (data: Float32Array, shape: readonly number[]): ort.Tensor => new ort.Tensor('float32', data, shape);

/** The safetensors files written from their recipes, and mini's torch.save training checkpoint (read by the pickle reader). */
const SOURCES: Array<{ name: string; file: (work: string) => string; label: string }> = [
  ...['sd1', 'sd2v', 'inpaint', 'depth'].map((name) => ({ name, file: (work: string) => writeCheckpoint(work, name), label: `${name}.safetensors` })),
  { name: 'mini', file: () => join(GRAPH_FIXTURES, 'mini.ckpt'), label: 'mini.ckpt (PyTorch Lightning layout, one level)' },
  { name: 'sd1', file: (work: string) => writeDiffusersFolder(join(work, 'sd1-diffusers'), 'sd1'), label: 'sd1 as a diffusers folder' },
];

for (const { name, file: source, label } of SOURCES) {
  const fixture = graphFixture(name);
  const S = suite(`graphs built from ${label} (${fixture.family}, ${fixture.dtype}) = torch`);
  const tempDir = scratch(S);
  // Converted once, on first use: a failure fails every test (uvu does not report a throwing before hook).
  let conversion: Promise<string> | undefined;
  const converted = (): Promise<string> => {
    conversion ??= (async () => {
      const work = tempDir();
      return (await convertCheckpoint(source(work), join(work, 'onnx'), { precision: 'fp32', prediction: 'epsilon' })).dir;
    })();
    return conversion;
  };

  S('text encoder: last_hidden_state and pooler_output', async () => {
    const dir = await converted();
    const ids = new ort.Tensor('int32', Int32Array.from(fixture.text.input_ids), [1, fixture.text.input_ids.length]);
    const out = await run(join(dir, 'text_encoder', 'model.onnx'), { input_ids: ids });
    near('last_hidden_state', out['last_hidden_state']!, fixture.text.last_hidden_state);
    near('pooler_output', out['pooler_output']!, fixture.text.pooler_output);
  });

  S('text encoder: CLIP skip 2 by the pipeline`s own graph edit = final_layer_norm(hidden_states[-2])', async () => {
    const dir = await converted();
    const edited = editTextEncoder(new Uint8Array(readFileSync(join(dir, 'text_encoder', 'model.onnx'))), { clipSkip: 2 });
    const path = join(dir, 'text_encoder', 'clip-skip-2.onnx');
    writeFileSync(path, edited.model);
    const ids = new ort.Tensor('int32', Int32Array.from(fixture.text.input_ids), [1, fixture.text.input_ids.length]);
    const out = await run(path, { input_ids: ids });
    near('clip skip 2', out[edited.hiddenOutput]!, fixture.text.clip_skip_2);
  });

  for (const c of fixture.unet) {
    S(`UNet: ${c.sample.shape.join('x')} latents at t=${c.timestep}`, async () => {
      const dir = await converted();
      const seed = readRecipe(name).seed;
      const out = await run(join(dir, 'unet', 'model.onnx'), {
        sample: float(syntheticInput(seed, c.sample.index, c.sample.shape), c.sample.shape),
        timestep: float(Float32Array.of(c.timestep), [1]),
        encoder_hidden_states: float(syntheticInput(seed, c.context.index, c.context.shape), c.context.shape),
      });
      near('out_sample', out['out_sample']!, c.out_sample);
    });
  }

  S('UNet with the pipeline`s attention fusion: every attention becomes MultiHeadAttention, same outputs', async () => {
    const dir = await converted();
    const fused = fuseAttention(new Uint8Array(readFileSync(join(dir, 'unet', 'model.onnx'))));
    assert.ok(fused.fused > 0 && fused.skipped === 0, `${fused.fused} fused, ${fused.skipped} left`);
    const path = join(dir, 'unet', 'fused.onnx');
    writeFileSync(path, fused.model);
    const c = fixture.unet[0]!;
    const seed = readRecipe(name).seed;
    const out = await run(path, {
      sample: float(syntheticInput(seed, c.sample.index, c.sample.shape), c.sample.shape),
      timestep: float(Float32Array.of(c.timestep), [1]),
      encoder_hidden_states: float(syntheticInput(seed, c.context.index, c.context.shape), c.context.shape),
    });
    near('fused out_sample', out['out_sample']!, c.out_sample);
  });

  S('VAE decoder and encoder', async () => {
    const dir = await converted();
    const seed = readRecipe(name).seed;
    const { decoder, encoder } = fixture.vae;
    const decoded = await run(join(dir, 'vae_decoder', 'model.onnx'), { latent_sample: float(syntheticInput(seed, decoder.latent_sample.index, decoder.latent_sample.shape), decoder.latent_sample.shape) });
    near('decoded', decoded['sample']!, decoder.sample);
    const encoded = await run(join(dir, 'vae_encoder', 'model.onnx'), { sample: float(syntheticInput(seed, encoder.sample.index, encoder.sample.shape), encoder.sample.shape) });
    near('latent_parameters', encoded['latent_parameters']!, encoder.latent_parameters);
  });

  S.run();
}
