import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModelLoadError, UsageError } from '../src/errors.js';
import { cachedModelEdit } from '../src/onnx/edited-model-cache.js';
import { externalDataLocations } from '../src/onnx/initializers.js';
import { ModelProto } from '../src/onnx/proto.js';
import { openSession } from '../src/onnx/session.js';
import { writeExternalDataVariant } from './helpers/external-data.js';
import { findEncoderStructure, editTextEncoder } from '../src/onnx/text-encoder-edit.js';
import { TextEncoder, prepareTextEncoderModel, type TextEncoderVariant } from '../src/pipeline/text-encoder.js';
import { readEmbedding } from '../src/text/embeddings.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';

/**
 * CLIP skip and textual inversion by graph surgery, run through ONNX Runtime and compared with
 * transformers' CLIPTextModel (tools/make_embedding_refs.py). Tolerance 1e-5 of the reference's
 * largest magnitude: the fixture's own ONNX-vs-torch error is ~1e-6 (tiny-sd README), and the
 * edit adds only a copy of the final layer norm and an exact row lookup.
 */

const TOLERANCE = 1e-5;
const SOURCE = join(TINY_SD, 'text_encoder/model.onnx');
const DIR = join(FIXTURES, 'embeddings');

interface ArrayRef {
  file: string;
  shape: number[];
}
interface Refs {
  clip_skip: Array<{ prompt: string; ids: number[]; hidden: Record<string, ArrayRef> }>;
  embedding: { ids: number[]; new_ids: number[]; last_hidden_state: ArrayRef; clip_skip_2: ArrayRef };
}
const refs = readJson<Refs>(join(DIR, 'refs.json'));
const cacheRoot = mkdtempSync(join(tmpdir(), 'diffuse-te-cache-'));

async function encodeWith(modelPath: string, hiddenOutput: string, ids: number[]): Promise<Float32Array> {
  const opened = await openSession(modelPath, { device: 'cpu', threads: 1 });
  try {
    return (await new TextEncoder(opened, { hiddenOutput }).encode(ids)).data;
  } finally {
    await opened.session.release();
  }
}

function assertClose(actual: Float32Array, ref: ArrayRef, what: string): number {
  const { relToMax } = compare(actual, readF32(join(DIR, ref.file)));
  assert.ok(relToMax <= TOLERANCE, `${what}: ${relToMax} > ${TOLERANCE}`);
  return relToMax;
}

test('finds the five layers of the residual stream in optimum export', () => {
  const structure = findEncoderStructure(ModelProto.decode(new Uint8Array(readFileSync(SOURCE))).graph);
  assert.is(structure.layers, 5);
  assert.equal(structure.hiddenStates, [
    '/text_model/embeddings/Add_output_0',
    ...[0, 1, 2, 3, 4].map((i) => `/text_model/encoder/layers.${i}/Add_1_output_0`),
  ]);
});

test('clip skip 1..3 matches final_layer_norm(hidden_states[-k]) from transformers', async () => {
  let worst = 0;
  for (const k of [1, 2, 3]) {
    const prepared = prepareTextEncoderModel(SOURCE, { clipSkip: k }, cacheRoot);
    if (k === 1) assert.is(prepared.path, SOURCE, 'clip skip 1 is the unedited model');
    for (const c of refs.clip_skip) worst = Math.max(worst, assertClose(await encodeWith(prepared.path, prepared.hiddenOutput, c.ids), c.hidden[String(k)]!, `k=${k} "${c.prompt}"`));
  }
  console.log(`  clip skip: max error ${worst.toExponential(2)} of max`);
});

test('the edit leaves the original outputs as they were', async () => {
  const prepared = prepareTextEncoderModel(SOURCE, { clipSkip: 2 }, cacheRoot);
  const ids = refs.clip_skip[0]!.ids;
  assert.equal(await encodeWith(prepared.path, 'last_hidden_state', ids), await encodeWith(SOURCE, 'last_hidden_state', ids));
});

test('textual inversion: new ids select the embedding rows (alone and with clip skip 2)', async () => {
  const emb = readEmbedding(join(DIR, 'tiny-emb.safetensors'));
  const e = refs.embedding;
  const plain = prepareTextEncoderModel(SOURCE, { embeddings: [emb] }, cacheRoot);
  assert.equal(plain.embeddings, [{ name: 'tiny-emb', ids: e.new_ids }]);
  const r1 = assertClose(await encodeWith(plain.path, plain.hiddenOutput, e.ids), e.last_hidden_state, 'embedding');
  const skipped = prepareTextEncoderModel(SOURCE, { clipSkip: 2, embeddings: [emb] }, cacheRoot);
  const r2 = assertClose(await encodeWith(skipped.path, skipped.hiddenOutput, e.ids), e.clip_skip_2, 'embedding + clip skip 2');
  console.log(`  embedding: max error ${Math.max(r1, r2).toExponential(2)} of max`);
  // Two embeddings get consecutive ids after the vocabulary, in the order given.
  const half = readEmbedding(join(DIR, 'one-vector.bin'));
  const both = prepareTextEncoderModel(SOURCE, { embeddings: [half, emb] }, cacheRoot);
  assert.equal(both.embeddings.map((x) => x.ids), [[49408], [49409, 49410]]);
});

test('edits are cached by source hash and edit: the second request does no surgery', () => {
  const dir = mkdtempSync(join(cacheRoot, 'own-'));
  let runs = 0;
  const request = (clipSkip: number) =>
    cachedModelEdit({
      source: SOURCE,
      cacheDir: dir,
      label: 'text-encoder',
      editKey: { clipSkip },
      edit: (model) => {
        runs++;
        const edited = editTextEncoder(model, { clipSkip });
        return { model: edited.model, result: edited.hiddenOutput };
      },
    });
  const first = request(2);
  const again = request(2);
  const other = request(3);
  assert.is(runs, 2);
  assert.equal([first.hit, again.hit, other.hit], [false, true, false]);
  assert.is(again.path, first.path);
  assert.is.not(other.path, first.path);
  assert.is(again.result, 'hidden_state_clip_skip_2');
  assert.equal(readdirSync(dir).length, 2, 'no temporary folders left behind');
});

test('external-data models: the edited graph still finds its weights', async () => {
  const source = writeExternalDataVariant(SOURCE, join(cacheRoot, 'external-src'));
  assert.ok(readFileSync(source).length < 300_000, 'weights really moved out of model.onnx (6.6 MB inline)');
  const emb = readEmbedding(join(DIR, 'tiny-emb.pt'));
  const variant: TextEncoderVariant = { clipSkip: 2, embeddings: [emb] };
  const prepared = prepareTextEncoderModel(source, variant, join(cacheRoot, 'external-cache'));
  assert.equal(externalDataLocations(ModelProto.decode(new Uint8Array(readFileSync(prepared.path))).graph), ['model.onnx_data']);
  assert.is(statSync(join(prepared.path, '../model.onnx_data')).nlink, 2, 'weights hard-linked, not copied');
  assertClose(await encodeWith(prepared.path, prepared.hiddenOutput, refs.embedding.ids), refs.embedding.clip_skip_2, 'external data');
});

test('impossible requests are UsageErrors; unrecognised graphs are ModelLoadErrors', () => {
  assert.throws(
    () => prepareTextEncoderModel(SOURCE, { clipSkip: 6 }, cacheRoot),
    (err: Error) => err instanceof UsageError && /clip skip 6 needs more than this text encoder's 5 layers/.test(err.message),
  );
  const bytes = new Uint8Array(readFileSync(SOURCE));
  // A layer whose residual Add became something else no longer lines up with the node names.
  const broken = ModelProto.decode(bytes);
  broken.graph.nodes.find((n) => n.name === '/text_model/encoder/layers.2/Add_1')!.msg.setString(4, 'Sub');
  assert.throws(() => editTextEncoder(broken.encode(), { clipSkip: 2 }), /not recognised: residual stream layer 0 is produced by node \/text_model\/encoder\/layers\.3\/Add_1/);
  const renamed = ModelProto.decode(bytes);
  renamed.graph.outputs.find((o) => o.name === 'last_hidden_state')!.name = 'hidden';
  const dir = join(cacheRoot, 'renamed');
  mkdirSync(dir);
  writeFileSync(join(dir, 'model.onnx'), renamed.encode());
  assert.throws(
    () => prepareTextEncoderModel(join(dir, 'model.onnx'), { clipSkip: 2 }, cacheRoot),
    (err: Error) => err instanceof ModelLoadError && /not recognised: no 'last_hidden_state' output/.test(err.message),
  );
});

test.after(() => rmSync(cacheRoot, { recursive: true, force: true }));

test.run();
