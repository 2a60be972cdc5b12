import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { assertNearRef, checkSdxlUnet, drawnInput, runGraph, tokenIds, type SdxlUnetRef } from './helpers/graph-refs.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';
import { checkpointBytes, sha256, type ArrayRef, type InputRef, type Recipe } from './helpers/synthetic-checkpoint.js';

/**
 * A single-file SDXL checkpoint (SGM layout: conditioner.embedders.0.transformer CLIP ViT-L,
 * conditioner.embedders.1.model OpenCLIP bigG with text_projection, label_emb, transformer depth
 * per level; tools/make_sdxl_checkpoint_fixture.py, tiny widths, CLIP's whole vocabulary) converted
 * to the diffusers ONNX layout the SDXL pipeline loads, against the torch modules diffusers' own
 * single-file converters load from the same file: each graph within 1e-5 of the reference's
 * largest magnitude, and a whole StableDiffusionXLPipeline txt2img within the pipeline's 1e-5.
 */
const DIR = join(FIXTURES, 'sdxl-checkpoint');

interface Manifest {
  name: string;
  sha256: string;
  seed: number;
  text: { input_ids: number[]; input_ids_2: number[]; penultimate: ArrayRef; penultimate_2: ArrayRef; text_embeds: ArrayRef };
  unet: SdxlUnetRef;
  vae: { latent_sample: InputRef; sample: ArrayRef };
  txt2img: ReferenceCase & { final_latents: ArrayRef };
}

const manifest = readJson<Manifest>(join(DIR, 'cases.json'));
const S = suite('SDXL single-file checkpoint: converted graphs = diffusers from_single_file converters');
const tempDir = scratch(S);
let conversion: Promise<string> | undefined;
const converted = (): Promise<string> => {
  conversion ??= (async () => {
    const work = tempDir();
    const bytes = checkpointBytes(readJson<Recipe>(join(DIR, `${manifest.name}.recipe.json.gz`)));
    assert.is(sha256(bytes), manifest.sha256, 'the checkpoint written from its recipe');
    const file = join(work, `${manifest.name}.safetensors`);
    writeFileSync(file, bytes);
    return (await convertCheckpoint(file, join(work, 'onnx'), { precision: 'fp32' })).dir;
  })();
  return conversion;
};

const near = (what: string, actual: Float32Array | undefined, expected: ArrayRef): number => assertNearRef(what, actual, DIR, expected);

S('the folder is an SDXL pipeline: two text encoders and tokenizers, SDXL scheduler and VAE scaling, the UNet taking text_embeds and time_ids', async () => {
  const dir = await converted();
  const index = JSON.parse(readFileSync(join(dir, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  assert.is(index._class_name, 'StableDiffusionXLPipeline');
  assert.ok(index.text_encoder_2 && index.tokenizer_2);
  assert.is(JSON.parse(readFileSync(join(dir, 'tokenizer_2', 'special_tokens_map.json'), 'utf8')).pad_token, '!');
  assert.is(JSON.parse(readFileSync(join(dir, 'vae_decoder', 'config.json'), 'utf8')).scaling_factor, 0.13025);
  assert.is(JSON.parse(readFileSync(join(dir, 'scheduler', 'scheduler_config.json'), 'utf8'))._class_name, 'EulerDiscreteScheduler');
  const unet = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'));
  assert.equal([...unet.inputNames], ['sample', 'timestep', 'encoder_hidden_states', 'text_embeds', 'time_ids']);
  await unet.release();
  // diffusers' and optimum's ONNX SDXL pipelines take the second encoder's first output as the pooled text.
  const second = await ort.InferenceSession.create(join(dir, 'text_encoder_2', 'model.onnx'));
  assert.equal(second.outputNames.slice(0, 2), ['text_embeds', 'last_hidden_state']);
  await second.release();
});

S("text encoders: CLIP ViT-L's and bigG's penultimate states, bigG's projected pooled text_embeds", async () => {
  const dir = await converted();
  const first = await runGraph(join(dir, 'text_encoder', 'model.onnx'), { input_ids: tokenIds(manifest.text.input_ids) });
  const second = await runGraph(join(dir, 'text_encoder_2', 'model.onnx'), { input_ids: tokenIds(manifest.text.input_ids_2) });
  near('text_encoder hidden_states.1', first['hidden_states.1'], manifest.text.penultimate);
  near('text_encoder_2 hidden_states.2', second['hidden_states.2'], manifest.text.penultimate_2);
  near('text_encoder_2 text_embeds', second['text_embeds'], manifest.text.text_embeds);
});

S('UNet with the added conditioning (pooled text, six time ids) and the VAE decoder', async () => {
  const dir = await converted();
  await checkSdxlUnet('unet out_sample', join(dir, 'unet', 'model.onnx'), manifest.seed, manifest.unet, DIR);
  const decoded = await runGraph(join(dir, 'vae_decoder', 'model.onnx'), { latent_sample: drawnInput(manifest.seed, manifest.vae.latent_sample) });
  near('vae_decoder sample', decoded['sample'], manifest.vae.sample);
});

S('txt2img from the converted folder = diffusers StableDiffusionXLPipeline on the same weights', async () => {
  const dir = await converted();
  const c = manifest.txt2img;
  const bundle = await loadModel(dir, { device: 'cpu', fuseAttention: true, graphCache: join(tempDir(), 'graphs') });
  try {
    assert.ok(bundle.sdxl, 'loaded as SDXL');
    const result = await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, referenceRequest(c, { promptWeighting: 'none' }));
    near('final latents', result.latents, c.final_latents);
  } finally {
    await bundle.release();
  }
});

S.run();
