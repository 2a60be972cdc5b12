import { cpSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { CheckpointError } from '../src/graphs/errors.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { assertNearRef, checkSdxlUnet, drawnInput, runGraph, tokenIds, type SdxlUnetRef } from './helpers/graph-refs.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';
import { writeDiffusersFolder, type ArrayRef, type InputRef } from './helpers/synthetic-checkpoint.js';

/**
 * SDXL diffusers (PyTorch) folders, base and refiner (tools/make_sdxl_folder_fixture.py: tiny-sdxl's
 * and tiny-sdxl-refiner's configs with recipe weights), converted to the diffusers ONNX layout the
 * pipeline loads, against the torch modules diffusers' from_pretrained loads from the same folders:
 * each graph within 1e-5 of the reference's largest magnitude, a StableDiffusionXLPipeline txt2img
 * and a base + refiner run (denoising_end / denoising_start) within the pipeline's 1e-5.
 */
const DIR = join(FIXTURES, 'sdxl-folder');
const TINY = join(FIXTURES, 'tiny-sdxl');

interface Manifest {
  seed: number;
  text: { input_ids: number[]; input_ids_2: number[]; penultimate: ArrayRef; penultimate_2: ArrayRef; text_embeds: ArrayRef };
  unet: SdxlUnetRef;
  refiner_unet: SdxlUnetRef;
  vae: { latent_sample: InputRef; sample: ArrayRef };
  txt2img: ReferenceCase & { final_latents: ArrayRef };
  refiner: ReferenceCase & { switch: number; final_latents: ArrayRef };
}

const manifest = readJson<Manifest>(join(DIR, 'cases.json'));
const near = (what: string, actual: Float32Array | undefined, expected: ArrayRef): number => assertNearRef(what, actual, DIR, expected);
const S = suite('SDXL diffusers folders (base, refiner): converted graphs = diffusers from_pretrained');
const tempDir = scratch(S);

const TOKENIZERS = {
  base: { tokenizer: join(TINY, 'tokenizer'), tokenizer_2: join(TINY, 'tokenizer_2') },
  refiner: { tokenizer_2: join(TINY, 'tokenizer_2') },
};
const conversions = new Map<'base' | 'refiner', Promise<string>>();
const converted = (name: 'base' | 'refiner'): Promise<string> => {
  if (!conversions.has(name)) {
    conversions.set(
      name,
      (async () => {
        const work = tempDir();
        const folder = writeDiffusersFolder(join(work, name), name, { layoutDir: DIR, tokenizers: TOKENIZERS[name] });
        return (await convertCheckpoint(folder, join(work, 'onnx'), { precision: 'fp32' })).dir;
      })(),
    );
  }
  return conversions.get(name)!;
};

const json = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

S('the base folder converts to an SDXL pipeline: both encoders and tokenizers (carried over), SDXL scaling, six time ids', async () => {
  const dir = await converted('base');
  const index = json(join(dir, 'model_index.json'));
  assert.is(index._class_name, 'StableDiffusionXLPipeline');
  assert.is(index.force_zeros_for_empty_prompt, true);
  assert.is(readFileSync(join(dir, 'tokenizer_2', 'vocab.json'), 'utf8'), readFileSync(join(TINY, 'tokenizer_2', 'vocab.json'), 'utf8'));
  assert.is(json(join(dir, 'vae_decoder', 'config.json')).scaling_factor, 0.13025);
  const unet = json(join(dir, 'unet', 'config.json'));
  assert.equal([unet.addition_embed_type, unet.projection_class_embeddings_input_dim, unet.transformer_layers_per_block], ['text_time', 60, [1, 2]]);
});

S('the refiner folder converts to an img2img SDXL pipeline with bigG alone and aesthetic-score time ids', async () => {
  const dir = await converted('refiner');
  const index = json(join(dir, 'model_index.json'));
  assert.is(index._class_name, 'StableDiffusionXLImg2ImgPipeline');
  assert.equal([index.requires_aesthetics_score, index.force_zeros_for_empty_prompt, index.text_encoder], [true, false, [null, null]]);
  assert.not.ok(existsSync(join(dir, 'text_encoder')) || existsSync(join(dir, 'tokenizer')), 'no first text encoder');
  assert.equal([json(join(dir, 'unet', 'config.json')).projection_class_embeddings_input_dim, json(join(dir, 'unet', 'config.json')).cross_attention_dim], [52, 24]);
});

S("text encoders: CLIP ViT-L's and bigG's penultimate states, bigG's pooled text_embeds (base and refiner)", async () => {
  for (const name of ['base', 'refiner'] as const) {
    const dir = await converted(name);
    const second = await runGraph(join(dir, 'text_encoder_2', 'model.onnx'), { input_ids: tokenIds(manifest.text.input_ids_2) });
    near(`${name} text_encoder_2 hidden_states.2`, second['hidden_states.2'], manifest.text.penultimate_2);
    near(`${name} text_encoder_2 text_embeds`, second['text_embeds'], manifest.text.text_embeds);
  }
  const first = await runGraph(join(await converted('base'), 'text_encoder', 'model.onnx'), { input_ids: tokenIds(manifest.text.input_ids) });
  near('text_encoder hidden_states.2', first['hidden_states.2'], manifest.text.penultimate);
});

S('UNets (base: six time ids; refiner: five, bigG-wide context) and the VAE decoder', async () => {
  await checkSdxlUnet('base unet', join(await converted('base'), 'unet', 'model.onnx'), manifest.seed, manifest.unet, DIR);
  await checkSdxlUnet('refiner unet', join(await converted('refiner'), 'unet', 'model.onnx'), manifest.seed, manifest.refiner_unet, DIR);
  const decoded = await runGraph(join(await converted('base'), 'vae_decoder', 'model.onnx'), { latent_sample: drawnInput(manifest.seed, manifest.vae.latent_sample) });
  near('vae_decoder sample', decoded['sample'], manifest.vae.sample);
});

S('txt2img from the converted base = StableDiffusionXLPipeline; base + refiner = denoising_end / denoising_start', async () => {
  const [base, refiner] = [await converted('base'), await converted('refiner')];
  const bundle = await loadModel(base, { device: 'cpu', refiner, graphCache: join(tempDir(), 'graphs') });
  try {
    assert.ok(bundle.sdxl && bundle.refiner, 'loaded as SDXL with its refiner');
    const t = manifest.txt2img;
    const plain = await generate({ ...bundle, schedule: discreteSchedule(t.scheduler.config) }, referenceRequest(t, { promptWeighting: 'none' }));
    near('txt2img final latents', plain.latents, t.final_latents);
    const r = manifest.refiner;
    const refined = await generate({ ...bundle, schedule: discreteSchedule(r.scheduler.config) }, referenceRequest(r, { promptWeighting: 'none', refinerSwitch: r.switch }));
    near('base + refiner final latents', refined.latents, r.final_latents);
  } finally {
    await bundle.release();
  }
});

S('an SDXL folder without text_encoder_2, or whose UNet does not fit its encoders, is refused in one line before anything is written', async () => {
  const work = tempDir();
  const missing = writeDiffusersFolder(join(work, 'missing'), 'base', { layoutDir: DIR, tokenizers: TOKENIZERS.base });
  rmSync(join(missing, 'text_encoder_2'), { recursive: true });
  const error = await convertCheckpoint(missing, join(work, 'out1'), { precision: 'fp32' }).catch((e: unknown) => e);
  assert.instance(error, CheckpointError);
  assert.match((error as Error).message, /an SDXL UNet but no text_encoder_2\/config\.json/);
  // The refiner's UNet (bigG-wide context) under the base's two encoders.
  const mixed = writeDiffusersFolder(join(work, 'mixed'), 'base', { layoutDir: DIR, tokenizers: TOKENIZERS.base });
  rmSync(join(mixed, 'unet'), { recursive: true });
  writeDiffusersFolder(join(work, 'refiner'), 'refiner', { layoutDir: DIR, tokenizers: {} });
  cpSync(join(work, 'refiner', 'unet'), join(mixed, 'unet'), { recursive: true });
  const refused = await convertCheckpoint(mixed, join(work, 'out2'), { precision: 'fp32' }).catch((e: unknown) => e);
  assert.instance(refused, CheckpointError);
  assert.match((refused as Error).message, /cross_attention_dim 24 is not the text encoders' 40; the folder mixes models/);
  assert.not.ok(existsSync(join(work, 'out1')) || existsSync(join(work, 'out2')));
});

S.run();
