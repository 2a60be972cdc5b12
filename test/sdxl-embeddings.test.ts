import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeConditioning } from '../src/pipeline/conditioning.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { EmbeddingError, readEmbedding } from '../src/text/embeddings.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';

/**
 * SDXL textual-inversion embeddings ({clip_l, clip_g}) against diffusers' StableDiffusionXLPipeline
 * with the same vectors loaded by load_textual_inversion into each text encoder with its tokenizer
 * (tools/make_sdxl_embedding_refs.py, on tiny-sdxl). The conditioning is held to 1e-5 of its
 * largest magnitude, as test/sdxl-pipeline's, and so are the final latents.
 */
const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'sdxl-embeddings');

interface Blob {
  file: string;
  shape: number[];
}

interface Case extends ReferenceCase {
  prompt_embeds: Blob;
  negative_prompt_embeds: Blob;
  pooled: Blob;
  negative_pooled: Blob;
  final_latents: Blob;
}

const manifest = readJson<{ trigger: string; cases: Case[] }>(join(DIR, 'cases.json'));

const test = suite('SDXL embeddings = diffusers load_textual_inversion into both encoders');
const scratch = mkdtempSync(join(tmpdir(), 'diffuse-sdxl-emb-'));
const embeddingsDir = join(scratch, 'embeddings');
let bundle: ModelBundle;
const warnings: string[] = [];

test.before(async () => {
  // The good file alone: the fixture folder also holds the references and the malformed files.
  mkdirSync(embeddingsDir);
  symlinkSync(join(DIR, `${manifest.trigger}.safetensors`), join(embeddingsDir, `${manifest.trigger}.safetensors`));
  bundle = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', embeddingsDir, graphCache: join(scratch, 'graphs'), onWarning: (m) => warnings.push(m) });
});
test.after(async () => {
  await bundle.release();
  rmSync(scratch, { recursive: true, force: true });
});

test('an SDXL file reads as clip_l (CLIP ViT-L) and clip_g (bigG) rows of equal count', () => {
  const emb = readEmbedding(join(DIR, `${manifest.trigger}.safetensors`));
  assert.equal([emb.count, emb.width, emb.clipG?.count, emb.clipG?.width], [2, 16, 2, 24]);
  assert.equal(warnings, []);
});

test('a file with clip_l alone, or unequal counts, is refused naming the file', () => {
  assert.throws(() => readEmbedding(join(DIR, 'clip-l-only.safetensors')), (e: Error) => e instanceof EmbeddingError && /clip-l-only\.safetensors: an SDXL embedding holds both clip_l and clip_g, this file only clip_l/.test(e.message));
  assert.throws(() => readEmbedding(join(DIR, 'uneven.safetensors')), (e: Error) => e instanceof EmbeddingError && /clip_l holds 2 vectors but clip_g 1/.test(e.message));
});

for (const c of manifest.cases) {
  test(`${c.name}: prompt embeds and pooled text_embeds equal encode_prompt's (none and a1111 readings)`, async () => {
    for (const [prompt, embeds, pooled] of [
      [c.prompt, c.prompt_embeds, c.pooled],
      [c.negative_prompt!, c.negative_prompt_embeds, c.negative_pooled],
    ] as const) {
      for (const weighting of ['none', 'a1111'] as const) {
        const cond = (await encodeConditioning(bundle, prompt, c.num_inference_steps, weighting, new Float32Array(6))).at(0);
        assert.equal([cond.tokens, cond.width], embeds.shape);
        const e = compare(cond.data, readF32(join(DIR, embeds.file)));
        assert.ok(e.relToMax < TOLERANCE, `${weighting} '${prompt}': embeds off by ${e.relToMax} of max`);
        const p = compare(cond.added!.textEmbeds, readF32(join(DIR, pooled.file)));
        assert.ok(p.relToMax < TOLERANCE, `${weighting} '${prompt}': pooled off by ${p.relToMax} of max`);
      }
    }
  });

  test(`${c.name}: txt2img final latents equal StableDiffusionXLPipeline's, and the image records the embedding`, async () => {
    const result = await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, referenceRequest(c, { promptWeighting: 'none' }));
    const latents = compare(result.latents, readF32(join(DIR, c.final_latents.file)));
    assert.ok(latents.relToMax < TOLERANCE, `final latents off by ${latents.maxAbs} (${latents.relToMax} of max)`);
    assert.equal(Object.keys(result.images[0]!.metadata.embeddings ?? {}), [manifest.trigger]);
  });
}

test('the trigger changes the conditioning: without the embedding it is plain text', async () => {
  const plain = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu' });
  try {
    const prompt = manifest.cases[0]!.prompt;
    const without = (await encodeConditioning(plain, prompt, 5, 'none', new Float32Array(6))).at(0);
    const withEmb = (await encodeConditioning(bundle, prompt, 5, 'none', new Float32Array(6))).at(0);
    assert.ok(compare(without.data, withEmb.data).relToMax > 1e-2);
  } finally {
    await plain.release();
  }
});

test.run();
