import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendInitializer, floatInitializer } from '../src/onnx/initializers.js';
import { ElemType, ModelProto } from '../src/onnx/proto.js';
import { encodeConditioning } from '../src/pipeline/conditioning.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';

/**
 * Prompt to conditioning end to end (schedule, 75-token chunks, text encoder per chunk, A1111 emphasis
 * with mean restoration, per-call choice of the scheduled text) against AUTOMATIC1111's own
 * get_learned_conditioning / FrozenCLIPEmbedderWithCustomWords / reconstruct_cond_batch around the
 * tiny torch text encoder (tools/make_conditioning_refs.py).
 *
 * The tiny encoder's final_layer_norm bias is replaced, here and in the reference, by a fixed
 * vector: untrained it is 0, every output row has mean ~0, and A1111's rescale
 * mean(z) / mean(z * w) would divide one rounding error by another.
 *
 * Tolerance 1e-5 of the reference's largest magnitude: ONNX Runtime vs torch is ~1e-6 per text-encoder
 * graph (tiny-sd README, test/text-encoder-edit.test.ts); the weighting after it is a few float32
 * multiplies and a ratio of two means of values far from 0, which adds ~1e-7 relative.
 */

const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'conditioning');
/** Written by the tiny-sd export as an Identity of a shared all-zero initialiser. */
const FINAL_NORM_BIAS = 'text_model.final_layer_norm.bias';

interface ArrayRef {
  file: string;
  shape: number[];
}
interface Case {
  name: string;
  prompt: string;
  steps: number;
  clip_skip: number;
  schedule: Array<{ end_step: number; text: string; hidden: ArrayRef }>;
  /** Per denoiser call (0-based), the schedule index A1111 conditions on. */
  calls: number[];
}
interface Refs {
  final_layer_norm_bias: ArrayRef;
  cases: Case[];
}

const refs = readJson<Refs>(join(DIR, 'refs.json'));
const work = mkdtempSync(join(tmpdir(), 'diffuse-conditioning-'));
const bundles = new Map<number, Promise<ModelBundle>>();

/** tiny-sd with the reference's final_layer_norm bias in its text encoder (an input of the Identity that makes it). */
function modelWithFinalNormBias(): string {
  const dir = join(work, 'tiny-sd-biased');
  mkdirSync(dir);
  for (const part of ['unet', 'vae_decoder', 'scheduler', 'tokenizer']) symlinkSync(join(TINY_SD, part), join(dir, part), 'junction');
  copyFileSync(join(TINY_SD, 'model_index.json'), join(dir, 'model_index.json'));
  mkdirSync(join(dir, 'text_encoder'));
  copyFileSync(join(TINY_SD, 'text_encoder/config.json'), join(dir, 'text_encoder/config.json'));
  const model = ModelProto.decode(new Uint8Array(readFileSync(join(TINY_SD, 'text_encoder/model.onnx'))));
  const graph = model.graph;
  const producer = graph.nodes.filter((n) => n.outputs[0] === FINAL_NORM_BIAS);
  assert.is(producer.length, 1, `one node makes ${FINAL_NORM_BIAS}`);
  assert.is(producer[0]!.opType, 'Identity');
  const bias = readF32(join(DIR, refs.final_layer_norm_bias.file));
  appendInitializer(graph, floatInitializer('diffuse_test.final_norm_bias', ElemType.FLOAT, [bias.length], bias));
  producer[0]!.inputs = ['diffuse_test.final_norm_bias'];
  writeFileSync(join(dir, 'text_encoder/model.onnx'), model.encode());
  return dir;
}

let modelDir: string | undefined;
function bundleFor(clipSkip: number): Promise<ModelBundle> {
  const dir = (modelDir ??= modelWithFinalNormBias());
  if (!bundles.has(clipSkip)) bundles.set(clipSkip, loadModel(dir, { device: 'cpu', threads: 1, clipSkip, graphCache: join(work, 'graphs') }));
  return bundles.get(clipSkip)!;
}

test.after(async () => {
  for (const bundle of bundles.values()) await (await bundle).release();
  rmSync(work, { recursive: true, force: true });
});

test('the references cover what they claim', () => {
  const byName = new Map(refs.cases.map((c) => [c.name, c]));
  assert.ok(byName.get('long')!.schedule[0]!.hidden.shape[0]! >= 2 * 77, 'long prompt spans chunks');
  assert.is(byName.get('editing')!.schedule.length, 2);
  assert.ok(byName.get('alternation')!.schedule.length > 2);
  assert.is(byName.get('clip-skip-2')!.clip_skip, 2);
});

for (const c of refs.cases) {
  test(`${c.name}: A1111 conditioning for every denoiser call (${JSON.stringify(c.prompt.slice(0, 40))}, ${c.steps} steps)`, async () => {
    const bundle = await bundleFor(c.clip_skip);
    const cond = await encodeConditioning(bundle, c.prompt, c.steps, 'a1111');
    assert.is(cond.texts, c.schedule.length, 'scheduled texts');
    const expected = c.schedule.map((entry) => readF32(join(DIR, entry.hidden.file)));
    let worst = 0;
    c.calls.forEach((index, call) => {
      const got = cond.at(call);
      const shape = c.schedule[index]!.hidden.shape;
      assert.equal([got.tokens, got.width], shape, `call ${call}: shape`);
      const errors = expected.map((ref) => (ref.length === got.data.length ? compare(got.data, ref).relToMax : Infinity));
      const nearest = errors.indexOf(Math.min(...errors));
      assert.ok(errors[index]! <= TOLERANCE, `call ${call}: A1111 conditions on text ${index} ${JSON.stringify(c.schedule[index]!.text)}, error ${errors[index]} (closest: text ${nearest})`);
      worst = Math.max(worst, errors[index]!);
    });
    console.log(`  ${c.name}: max error ${worst.toExponential(2)} of max over ${c.calls.length} calls`);
  });
}

test.run();
