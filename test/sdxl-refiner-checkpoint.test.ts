import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { assertNearRef, checkSdxlUnet, runGraph, tokenIds, type SdxlUnetRef } from './helpers/graph-refs.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';
import { checkpointBytes, sha256, type ArrayRef, type Recipe } from './helpers/synthetic-checkpoint.js';

/**
 * A single-file SDXL refiner (SGM layout: OpenCLIP bigG alone as conditioner.embedders.0.model, five time ids with the
 * aesthetic score; tools/make_sdxl_refiner_checkpoint_fixture.py) converted by the SDXL builder to the diffusers ONNX
 * refiner folder, against diffusers' StableDiffusionXLImg2ImgPipeline.from_single_file on the same file: bigG and the
 * UNet within 1e-5 of the reference's largest magnitude, and the ensemble of experts with the single-file base of
 * test/sdxl-checkpoint.test.ts (--refiner, switch 0.8) within the pipeline's 1e-5.
 */
const DIR = join(FIXTURES, 'sdxl-refiner-checkpoint');
const BASE_DIR = join(FIXTURES, 'sdxl-checkpoint');

interface Manifest {
  name: string;
  base: string;
  sha256: string;
  seed: number;
  text: { input_ids_2: number[]; penultimate_2: ArrayRef; text_embeds: ArrayRef };
  unet: SdxlUnetRef;
  refiner: ReferenceCase & { switch: number; final_latents: ArrayRef };
}

const manifest = readJson<Manifest>(join(DIR, 'cases.json'));
const S = suite('SDXL single-file refiner: converted graphs = diffusers StableDiffusionXLImg2ImgPipeline.from_single_file');
const tempDir = scratch(S);
const conversions = new Map<string, Promise<string>>();
const converted = (dir: string, name: string, sha?: string): Promise<string> => {
  if (!conversions.has(name)) {
    conversions.set(name, (async () => {
      const work = tempDir();
      const bytes = checkpointBytes(readJson<Recipe>(join(dir, `${name}.recipe.json.gz`)));
      if (sha) assert.is(sha256(bytes), sha, 'the checkpoint written from its recipe');
      const file = join(work, `${name}.safetensors`);
      writeFileSync(file, bytes);
      return (await convertCheckpoint(file, join(work, 'onnx'), { precision: 'fp32' })).dir;
    })());
  }
  return conversions.get(name)!;
};
const refiner = () => converted(DIR, manifest.name, manifest.sha256);
const json = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

S('the file converts to the refiner folder: img2img SDXL pipeline, bigG alone (its tokenizer pads with "!"), aesthetic-score time ids', async () => {
  const dir = await refiner();
  const index = json(join(dir, 'model_index.json'));
  assert.is(index._class_name, 'StableDiffusionXLImg2ImgPipeline');
  assert.equal([index.requires_aesthetics_score, index.force_zeros_for_empty_prompt, index.text_encoder], [true, false, [null, null]]);
  assert.not.ok(existsSync(join(dir, 'text_encoder')) || existsSync(join(dir, 'tokenizer')), 'no first text encoder');
  assert.is(json(join(dir, 'tokenizer_2', 'special_tokens_map.json')).pad_token, '!');
  const unet = json(join(dir, 'unet', 'config.json'));
  assert.equal([unet.projection_class_embeddings_input_dim, unet.cross_attention_dim, unet.addition_time_embed_dim], [5 * 8 + 32, 64, 8]);
});

S("bigG's penultimate states and pooled text_embeds; the UNet with five time ids", async () => {
  const dir = await refiner();
  const text = await runGraph(join(dir, 'text_encoder_2', 'model.onnx'), { input_ids: tokenIds(manifest.text.input_ids_2) });
  const states = assertNearRef('text_encoder_2 hidden_states.2', text['hidden_states.2'], DIR, manifest.text.penultimate_2);
  const pooled = assertNearRef('text_encoder_2 text_embeds', text['text_embeds'], DIR, manifest.text.text_embeds);
  const unet = await checkSdxlUnet('refiner unet out_sample', join(dir, 'unet', 'model.onnx'), manifest.seed, manifest.unet, DIR);
  console.log(`  refiner vs from_single_file: bigG states ${states.toExponential(1)}, text_embeds ${pooled.toExponential(1)}, UNet ${unet.toExponential(1)} of max`);
});

S('base + refiner, both single files (--refiner, switch 0.8) = diffusers denoising_end / denoising_start', async () => {
  const base = await converted(BASE_DIR, manifest.base);
  const bundle = await loadModel(base, { device: 'cpu', refiner: await refiner(), graphCache: join(tempDir(), 'graphs') });
  try {
    assert.ok(bundle.sdxl && bundle.refiner, 'loaded as SDXL with its refiner');
    const r = manifest.refiner;
    const result = await generate({ ...bundle, schedule: discreteSchedule(r.scheduler.config) }, referenceRequest(r, { promptWeighting: 'none', refinerSwitch: r.switch }));
    const off = assertNearRef('base + refiner final latents', result.latents, DIR, r.final_latents);
    console.log(`  base + refiner final latents: ${off.toExponential(1)} of max`);
  } finally {
    await bundle.release();
  }
});

S.run();
