import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scratch } from './helpers/scratch.js';
import * as ort from 'onnxruntime-node';
import { clipMerges, clipVocab } from '../src/graphs/clip-tokenizer-files.js';
import { probePrediction } from '../src/graphs/prediction-probe.js';
import { readCheckpointRecord } from '../src/graphs/model-folder.js';
import { readLocalModels } from '../src/models/index.js';
import { editTextEncoder } from '../src/onnx/text-encoder-edit.js';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { diffuse } from './helpers/cli.js';
import { FIXTURES, compare } from './helpers/fixtures.js';
import { graphFixture, readRecipe, syntheticInput, writeCheckpoint } from './helpers/synthetic-checkpoint.js';

/**
 * `diffuse convert` and the conversion cache as a user meets them: the folder named after the
 * file's SHA-256, A1111's hashes recorded (computed independently by the Python side), the cache
 * found again without converting, --id, -o, fp16 storage, SD 2.x's ε/v probe, and the tokenizer
 * a converted folder carries.
 */

const S = suite('diffuse convert');

const tempDir = scratch(S);
const sd1 = graphFixture('sd1');

function convert(args: string[], home: string): string {
  const r = diffuse(['convert', ...args, '-q'], { env: { DIFFUSE_HOME: home } });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.trim();
}

S('a checkpoint converts once into the cache, named by its SHA-256, recording A1111`s hashes; the second use finds it', () => {
  const home = tempDir('diffuse-convert-home-');
  const file = writeCheckpoint(tempDir(), 'sd1');
  const dir = convert([file], home);
  assert.is(dir, join(home, 'converted', `${sd1.sha256.slice(0, 16)}-fp32`));
  const record = readCheckpointRecord(dir)!;
  assert.equal(
    { name: record.name, sha256: record.sha256, a1111Hash: record.a1111Hash, a1111OldHash: record.a1111OldHash, family: record.family, prediction: record.prediction },
    { name: 'sd1', sha256: sd1.sha256, a1111Hash: sd1.a1111Hash, a1111OldHash: sd1.a1111OldHash, family: 'sd1', prediction: 'epsilon' },
  );
  const written = statSync(join(dir, 'unet', 'model.onnx_data')).mtimeMs;
  assert.is(convert([file], home), dir);
  assert.is(statSync(join(dir, 'unet', 'model.onnx_data')).mtimeMs, written, 'converted again');
  const hashes = JSON.parse(readFileSync(join(home, 'converted', 'hashes.json'), 'utf8')) as Record<string, { sha256: string }>;
  assert.equal(Object.values(hashes).map((h) => h.sha256), [sd1.sha256]);
});

S('-o writes the folder there; --id registers it as a local model; an existing -o folder is refused', async () => {
  const home = tempDir('diffuse-convert-home-');
  const out = join(tempDir(), 'my-model');
  const file = writeCheckpoint(tempDir(), 'mini');
  assert.is(convert([file, '-o', out, '--id', 'my-mini'], home), out);
  assert.is((await readLocalModels(home))['my-mini']?.path, out);
  const again = diffuse(['convert', file, '-q', '-o', out], { env: { DIFFUSE_HOME: home } });
  assert.is(again.status, 2);
  assert.match(again.stderr, /already exists/);
});

/** The UNet's output on fixture case `a` from a converted folder. */
async function unetOut(dir: string): Promise<Float32Array> {
  const c = sd1.unet[0]!;
  const seed = readRecipe('sd1').seed;
  const session = await ort.InferenceSession.create(join(dir, 'unet', 'model.onnx'));
  try {
    const out = await session.run({
      sample: new ort.Tensor('float32', syntheticInput(seed, c.sample.index, c.sample.shape), c.sample.shape),
      timestep: new ort.Tensor('float32', Float32Array.of(c.timestep), [1]),
      encoder_hidden_states: new ort.Tensor('float32', syntheticInput(seed, c.context.index, c.context.shape), c.context.shape),
    });
    return out['out_sample']!.data as Float32Array;
  } finally {
    await session.release();
  }
}

S('--precision fp16 stores half the bytes; from an F16 file the weights, and so the outputs, are the same as fp32`s', async () => {
  const home = tempDir('diffuse-convert-home-');
  const file = writeCheckpoint(tempDir(), 'sd1');
  const fp32 = convert([file], home);
  const fp16 = convert([file, '--precision', 'fp16'], home);
  assert.is(fp16, join(home, 'converted', `${sd1.sha256.slice(0, 16)}-fp16`));
  const size = (dir: string): number => statSync(join(dir, 'unet', 'model.onnx_data')).size;
  assert.ok(size(fp16) < 0.55 * size(fp32), `${size(fp16)} vs ${size(fp32)} bytes`);
  assert.is(compare(await unetOut(fp16), await unetOut(fp32)).maxAbs, 0);
  // The token table stays an initialiser textual-inversion edits can extend (float16 rows).
  const width = 128;
  const edited = editTextEncoder(new Uint8Array(readFileSync(join(fp16, 'text_encoder', 'model.onnx'))), { embeddings: [{ vectors: new Float32Array(width), count: 1, width }] });
  assert.equal(edited.embeddingIds, [[49408]]);
});

S('SD 2.x: without --prediction, A1111`s probe decides ε or v, on the same statistic torch computes', async () => {
  const home = tempDir('diffuse-convert-home-');
  const sd2v = graphFixture('sd2v');
  const dir = convert([writeCheckpoint(tempDir(), 'sd2v')], home);
  const record = readCheckpointRecord(dir)!;
  assert.equal([record.predictionFrom, record.prediction], ['probe', sd2v.probe!.prediction]);
  const probe = await probePrediction(join(dir, 'unet', 'model.onnx'), { in: 4, context: 128 });
  assert.ok(Math.abs(probe.statistic - sd2v.probe!.statistic) < 1e-5 * Math.max(1, Math.abs(sd2v.probe!.statistic)), `${probe.statistic} vs torch ${sd2v.probe!.statistic}`);
  const scheduler = JSON.parse(readFileSync(join(dir, 'scheduler', 'scheduler_config.json'), 'utf8')) as { prediction_type: string };
  assert.is(scheduler.prediction_type, record.prediction);
  // --prediction overrides the probe, and is part of the cache key.
  const forced = convert([writeCheckpoint(tempDir(), 'sd2v'), '--prediction', 'v'], home);
  assert.equal([readCheckpointRecord(forced)!.prediction, readCheckpointRecord(forced)!.predictionFrom], ['v_prediction', 'option']);
  assert.is.not(forced, dir);
  assert.is(JSON.parse(readFileSync(join(forced, 'unet', 'config.json'), 'utf8')).sample_size, 96, 'SD 2.x v-models are 768 px');
});

S('the tokenizer a conversion writes is CLIP`s (the vocabulary derived from the shipped merges = transformers` files); SD 2.x pads with "!"', async () => {
  const tinySd = join(FIXTURES, 'tiny-sd', 'tokenizer');
  assert.equal(clipVocab(clipMerges()), JSON.parse(readFileSync(join(tinySd, 'vocab.json'), 'utf8')));
  assert.is(clipMerges(), readFileSync(join(tinySd, 'merges.txt'), 'utf8'));
  const home = tempDir('diffuse-convert-home-');
  const sd1Tokenizer = await ClipTokenizer.fromDirectory(join(convert([writeCheckpoint(tempDir(), 'sd1')], home), 'tokenizer'));
  const sd2Tokenizer = await ClipTokenizer.fromDirectory(join(convert([writeCheckpoint(tempDir(), 'depth')], home), 'tokenizer'));
  assert.equal([sd1Tokenizer.padTokenId, sd2Tokenizer.padTokenId], [49407, 0]);
  assert.equal(sd1Tokenizer.encode('a lighthouse on a cliff'), (await ClipTokenizer.fromDirectory(tinySd)).encode('a lighthouse on a cliff'));
});

S('txt2img --model <file>: converted on first use (progress on stderr), found in the cache after; the image names the checkpoint and its A1111 hash', () => {
  const home = tempDir('diffuse-convert-home-');
  const file = writeCheckpoint(tempDir(), 'sd1');
  const out = tempDir();
  const run = (name: string) => diffuse(['txt2img', 'a fox', '--model', file, '--steps', '2', '-W', '32', '-H', '32', '--seed', '1', '-o', join(out, name)], { env: { DIFFUSE_HOME: home } });
  const first = run('1.png');
  assert.is(first.status, 0, first.stderr);
  assert.match(first.stderr, /converting/);
  const second = run('2.png');
  assert.is(second.status, 0, second.stderr);
  assert.not.match(second.stderr, /converting|hashing/);
  assert.equal(readFileSync(join(out, '1.png')), readFileSync(join(out, '2.png')));
  assert.match(readFileSync(join(out, '1.png')).toString('latin1'), /Model: sd1[,\n]/);
  const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
  assert.match(readFileSync(join(out, '1.png')).toString('latin1'), new RegExp(`Model hash: ${sha.slice(0, 10)}[,\n]`));
});

S('a missing file is a usage error', () => {
  const r = diffuse(['convert', '/nonexistent/model.safetensors', '-q']);
  assert.is(r.status, 2);
  assert.match(r.stderr, /does not exist/);
  assert.not.ok(existsSync('/nonexistent'));
});

S.run();
