import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { CheckpointError } from '../src/graphs/errors.js';
import { convertVae, ensureConvertedVae, readVaeRecord, vaeFiles } from '../src/graphs/vae-convert.js';
import { FIXTURES, compare, readF32 } from './helpers/fixtures.js';
import { scratch } from './helpers/scratch.js';
import { GRAPH_FIXTURES, graphFixture, syntheticInput, type ArrayRef, type InputRef } from './helpers/synthetic-checkpoint.js';
import { VAE_FIXTURES, vaeFixtures, writeVaeFile, writeVaeFolder } from './helpers/vae-files.js';

/**
 * VAE files converted into ONNX graphs (src/graphs/vae-convert.ts) against diffusers' own modules
 * on the same weights (tools/make_vae_fixtures.py): AutoencoderKL loaded by from_single_file from an
 * A1111-style LDM file (F16, with model_ema/loss extras), the same weights as a diffusers folder
 * under the deprecated attention names, a whole training .ckpt (first_stage_model.*), and TAESD at
 * full width against AutoencoderTiny, from diffusers' file and from the original decoder/encoder
 * pair. Held to 1e-5 of the reference's largest magnitude (float32 sums in another order; seen below).
 */
const TOLERANCE = 1e-5;
const fx = vaeFixtures();

async function run(path: string, input: Float32Array, shape: readonly number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'all', logSeverityLevel: 3 });
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', input, shape) });
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

async function near(dir: string, part: 'vae_decoder' | 'vae_encoder', seed: number, input: InputRef, expected: ArrayRef, refDir: string): Promise<number> {
  const got = await run(join(dir, part, 'model.onnx'), syntheticInput(seed, input.index, input.shape), input.shape);
  const e = compare(got, readF32(join(refDir, expected.file)));
  assert.ok(e.relToMax < TOLERANCE, `${part}: off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
  return e.relToMax;
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

const KL = suite('VAE files (AutoencoderKL) = diffusers');
const klTemp = scratch(KL);

KL('an A1111 VAE file (LDM layout, F16, model_ema/loss extras) = from_single_file; recorded as A1111 names and hashes it', async () => {
  const work = klTemp();
  const file = writeVaeFile(work, fx.kl.ldm.recipe, 'vae-ft-tiny.safetensors');
  assert.is(sha256(file), fx.kl.ldm.sha256, 'the file written from the recipe is the one the reference loaded');
  const record = await convertVae(vaeFiles(file), join(work, 'out'), { sha256: fx.kl.ldm.sha256, a1111Hash: fx.kl.ldm.sha256.slice(0, 10) });
  assert.equal([record.kind, record.name, record.a1111Hash, record.encoder], ['kl', 'vae-ft-tiny.safetensors', fx.kl.ldm.sha256.slice(0, 10), true]);
  await near(join(work, 'out'), 'vae_decoder', fx.seeds.kl, fx.kl.decoder.latent_sample, fx.kl.decoder.sample, VAE_FIXTURES);
  await near(join(work, 'out'), 'vae_encoder', fx.seeds.kl, fx.kl.encoder.sample, fx.kl.encoder.latent_parameters, VAE_FIXTURES);
});

KL('a diffusers VAE folder with the deprecated query/key/value/proj_attn names gives the same numbers', async () => {
  const work = klTemp();
  const folder = writeVaeFolder(join(work, 'sd-vae-ft-tiny'), fx.kl.diffusers.recipe, fx.kl.diffusers.config);
  const dir = await ensureConvertedVae(folder, join(work, 'cache'));
  assert.is(readVaeRecord(dir)?.name, 'diffusion_pytorch_model.safetensors');
  await near(dir, 'vae_decoder', fx.seeds.kl, fx.kl.decoder.latent_sample, fx.kl.decoder.sample, VAE_FIXTURES);
  await near(dir, 'vae_encoder', fx.seeds.kl, fx.kl.encoder.sample, fx.kl.encoder.latent_parameters, VAE_FIXTURES);
});

KL('a whole training checkpoint (.ckpt, first_stage_model.*) serves as a VAE file', async () => {
  const work = klTemp();
  const mini = graphFixture('mini');
  const ckpt = join(work, 'mini.vae.pt');
  copyFileSync(join(GRAPH_FIXTURES, 'mini.ckpt'), ckpt);
  const dir = await ensureConvertedVae(ckpt, join(work, 'cache'));
  await near(dir, 'vae_decoder', 15, mini.vae.decoder.latent_sample, mini.vae.decoder.sample, GRAPH_FIXTURES);
  await near(dir, 'vae_encoder', 15, mini.vae.encoder.sample, mini.vae.encoder.latent_parameters, GRAPH_FIXTURES);
});

KL('converted once: the cache folder is keyed by the file`s SHA-256 and found again', async () => {
  const work = klTemp();
  const file = writeVaeFile(work, fx.kl.ldm.recipe, 'a.safetensors');
  const cache = join(work, 'cache');
  const dir = await ensureConvertedVae(file, cache);
  assert.match(dir, new RegExp(`vae-${fx.kl.ldm.sha256.slice(0, 16)}$`));
  const stamp = readFileSync(join(dir, 'vae_decoder', 'model.onnx'));
  writeFileSync(join(dir, 'vae_decoder', 'marker'), '');
  assert.is(await ensureConvertedVae(file, cache), dir);
  assert.ok(existsSync(join(dir, 'vae_decoder', 'marker')), 'not converted again');
  assert.equal(readFileSync(join(dir, 'vae_decoder', 'model.onnx')), stamp);
});

const TINY = suite('TAESD = diffusers AutoencoderTiny');
const tinyTemp = scratch(TINY);

TINY('diffusers` AutoencoderTiny file: decoder and encoder', async () => {
  const work = tinyTemp();
  const folder = writeVaeFolder(join(work, 'taesd'), fx.taesd.diffusers.recipe, fx.taesd.diffusers.config);
  const dir = await ensureConvertedVae(folder, join(work, 'cache'));
  assert.equal([readVaeRecord(dir)?.kind, readVaeRecord(dir)?.latentChannels, readVaeRecord(dir)?.encoder], ['taesd', 4, true]);
  await near(dir, 'vae_decoder', fx.seeds.taesd, fx.taesd.decoder.latent_sample, fx.taesd.decoder.sample, VAE_FIXTURES);
  await near(dir, 'vae_encoder', fx.seeds.taesd, fx.taesd.encoder.sample, fx.taesd.encoder.latents, VAE_FIXTURES);
});

TINY('the original taesd_decoder file, with taesd_encoder found beside it by name', async () => {
  const work = tinyTemp();
  const decoder = writeVaeFile(work, fx.taesd.original.decoder, 'taesd_decoder.safetensors');
  writeVaeFile(work, fx.taesd.original.encoder, 'taesd_encoder.safetensors');
  const dir = await ensureConvertedVae(decoder, join(work, 'cache'));
  assert.is(readVaeRecord(dir)?.name, 'taesd_decoder.safetensors');
  await near(dir, 'vae_decoder', fx.seeds.taesd, fx.taesd.decoder.latent_sample, fx.taesd.decoder.sample, VAE_FIXTURES);
  await near(dir, 'vae_encoder', fx.seeds.taesd, fx.taesd.encoder.sample, fx.taesd.encoder.latents, VAE_FIXTURES);
});

TINY('a decoder without its encoder converts alone; an encoder alone is refused', async () => {
  const work = tinyTemp();
  const decoder = writeVaeFile(join(work, 'only'), fx.taesd.original.decoder, 'taesd_decoder.safetensors');
  const dir = await ensureConvertedVae(decoder, join(work, 'cache'));
  assert.equal(readdirSync(dir).sort(), ['source.json', 'vae.json', 'vae_decoder']);
  const encoder = writeVaeFile(join(work, 'enc'), fx.taesd.original.encoder, 'taesd_encoder.safetensors');
  try {
    await ensureConvertedVae(encoder, join(work, 'cache'));
    assert.unreachable('converted an encoder alone');
  } catch (err) {
    assert.instance(err, CheckpointError);
    assert.match((err as Error).message, /TAESD encoder; pass its decoder file/);
  }
});

TINY('files that are no VAE are refused in one line, leaving nothing behind', async () => {
  const work = tinyTemp();
  const cache = join(work, 'cache');
  const decoder = readFileSync(writeVaeFile(join(work, 'x'), fx.taesd.original.decoder, 'taesd_decoder.safetensors'));
  // Layer 18 renamed 28 in the header (same length): the structure is no longer TAESD's.
  const shifted = join(work, 'shifted_decoder.safetensors');
  writeFileSync(shifted, Buffer.from(decoder.toString('latin1').replaceAll('"18.', '"28.'), 'latin1'));
  for (const [file, message] of [
    [shifted, /not a TAESD decoder \(it does not start and end with a convolution\)/],
    [join(GRAPH_FIXTURES, 'mini.recipe.json.gz'), /not a valid safetensors file/],
    [join(FIXTURES, 'embeddings', 'bf16.safetensors'), /no VAE found/],
  ] as const) {
    try {
      await ensureConvertedVae(file, cache);
      assert.unreachable(`converted ${file}`);
    } catch (err) {
      assert.instance(err, CheckpointError);
      assert.match((err as Error).message, message);
      assert.not.match((err as Error).message, /\n/);
    }
  }
  assert.equal(readdirSync(cache).filter((n) => n.startsWith('vae-')), []);
});

KL.run();
TINY.run();
