import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convertBlip } from '../src/graphs/blip-convert.js';
import { CheckpointError } from '../src/graphs/errors.js';
import { loadImage } from '../src/image/load-image.js';
import { floatTensor, intTensor, toFloat32 } from '../src/onnx/dtype.js';
import { openSession } from '../src/onnx/session.js';
import { BlipCaptioner } from '../src/pipeline/interrogate/blip-captioner.js';
import { tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { GRAPH_FIXTURES, checkpointBytes, readRecipe, sha256, type Recipe } from './helpers/synthetic-checkpoint.js';

// References: tools/make_blip_graph_refs.py (transformers 4.46.3 BlipForConditionalGeneration on a synthetic-recipe
// model.safetensors with the tiny img2txt fixture's config): vision last_hidden_state, decoder logits over each
// caption, and generate's caption ids with A1111's settings.
interface Case { image: string; features: number[][]; ids: number[]; caption: string; logits: number[][]; minGap: number }
const refs = readJson<{ sha256: string; cases: Case[] }>(join(GRAPH_FIXTURES, 'blip.refs.json.gz'));
const BLIP = join(FIXTURES, 'tiny-interrogate', 'blip');
const FILES = ['config.json', 'preprocessor_config.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json'];
const cpu = { device: 'cpu' as const, threads: 1 };

/** A Hub-like BLIP folder: the recipe's model.safetensors and the fixture's configs and tokenizer. */
function hubFolder(edit?: (r: Recipe) => Recipe): string {
  const dir = tempDir('diffuse-blip-src-');
  const bytes = checkpointBytes(edit ? edit(readRecipe('blip')) : readRecipe('blip'));
  if (!edit) assert.is(sha256(bytes), refs.sha256);
  writeFileSync(join(dir, 'model.safetensors'), bytes);
  for (const f of FILES) cpSync(join(BLIP, f), join(dir, f));
  return dir;
}

function worst(got: Float32Array, want: number[]): number {
  let diff = 0;
  let scale = 0;
  want.forEach((w, i) => {
    diff = Math.max(diff, Math.abs(got[i]! - w));
    scale = Math.max(scale, Math.abs(w));
  });
  return diff / scale;
}

test('graphs built from model.safetensors = transformers: vision features, decoder logits (1e-5 of max), caption ids', async () => {
  const out = join(tempDir('diffuse-blip-out-'), 'blip');
  await convertBlip(hubFolder(), out);
  const captioner = await BlipCaptioner.open(out, cpu);
  const vision = await openSession(join(out, 'vision_model', 'model.onnx'), cpu);
  const decoder = await openSession(join(out, 'text_decoder_model', 'model.onnx'), cpu);
  let features = 0;
  let logits = 0;
  try {
    for (const c of refs.cases) {
      const image = (await loadImage(readFileSync(join(FIXTURES, 'tiny-interrogate', 'refs', c.image)))).rgb;
      const pixels = captioner.pixels(image);
      const states = (await vision.session.run({ pixel_values: floatTensor('float32', pixels.data, [1, 3, pixels.height, pixels.width]) })).last_hidden_state!;
      features = Math.max(features, worst(toFloat32(states), c.features.flat()));
      const scores = (await decoder.session.run({ input_ids: intTensor('int64', c.ids, [1, c.ids.length]), encoder_hidden_states: states })).logits!;
      logits = Math.max(logits, worst(toFloat32(scores), c.logits.flat()));
      const caption = await captioner.caption(image, { minLength: 24, maxLength: 48 });
      assert.equal(caption.ids, c.ids, c.image);
      assert.is(caption.text, c.caption);
    }
  } finally {
    await Promise.all([captioner.release(), vision.session.release(), decoder.session.release()]);
  }
  console.log(`  BLIP graphs vs transformers: features ${features.toExponential(2)}, logits ${logits.toExponential(2)} of max`);
  assert.ok(features <= 1e-5, `features ${features}`);
  assert.ok(logits <= 1e-5, `logits ${logits}`);
});

test('not BLIP, wrong shapes, config without vision_config: one line each, nothing written', async () => {
  const root = tempDir('diffuse-blip-bad-');
  const notBlip = hubFolder();
  writeFileSync(join(notBlip, 'model.safetensors'), checkpointBytes(readRecipe('mini')));
  const shape = hubFolder((r) => ({ ...r, tensors: r.tensors.map((t) => (t[0] === 'text_decoder.bert.embeddings.position_embeddings.weight' ? [t[0], t[1], [32, 8], t[3], t[4], t[5]] : t)) }));
  const config = hubFolder();
  const json = readJson<Record<string, unknown>>(join(config, 'config.json'));
  delete json.vision_config;
  writeFileSync(join(config, 'config.json'), JSON.stringify(json));
  for (const [src, says] of [
    [notBlip, /model\.safetensors is not a BLIP captioning checkpoint \(no vision_model\.embeddings\.patch_embedding\.weight\)/],
    [shape, /tensor text_decoder\.bert\.embeddings\.position_embeddings\.weight has shape \[32, 8\], expected \[64, 8\]/],
    [config, /config\.json has no vision_config: it is not a BlipForConditionalGeneration config/],
  ] as const) {
    const out = join(root, 'out');
    const err = await convertBlip(src, out).then(() => undefined, (e: Error) => e);
    assert.ok(err instanceof CheckpointError, `${src}: ${String(err)}`);
    assert.match(err!.message, says);
    assert.is(err!.message.split('\n').length, 1);
    assert.is((err as CheckpointError).exitCode, 2);
    assert.not.ok(existsSync(out));
  }
});

test.run();
