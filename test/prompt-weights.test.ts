// Emphasis after the text encoder against A1111's own forward() (tools/make_prompt_refs.py: the encoder
// replaced by recorded random float32 states of width 8, batches of several texts, SD1 and SD2 padding,
// every emphasis mode), and ComfyUI's weighting formula. Inputs to the encoder are compared exactly.
// Outputs: float32 like torch; torch sums the means in float32 (we sum in float64), which moves the
// normalising ratio by a few float32 ulps, hence 1e-6 relative to the largest value.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { batchChunks, encoderInputIds, tokenizeLine, type ChunkTokenIds, type EmphasisMode } from '../src/text/prompt-chunks.js';
import { padCondUncond } from '../src/text/prompt-pad.js';
import { applyComfyWeights, weightBatches } from '../src/text/prompt-weights.js';

interface TensorRef {
  offset: number;
  shape: number[];
}
interface ForwardRef {
  texts: string[];
  emphasis: string;
  pad: 'eos' | 'zero';
  encoder_calls: Array<{ input_ids: number[][]; hidden: TensorRef }>;
  output: TensorRef;
}
interface ComfyRef {
  prompt: string;
  multipliers: number[][];
  hidden: TensorRef;
  empty_hidden: TensorRef;
  output: TensorRef;
}
const fixture = (path: string): URL => new URL(`../../test/fixtures/${path}`, import.meta.url);
const refs = JSON.parse(readFileSync(fixture('prompt/forward.json'), 'utf8')) as { width: number; forward: ForwardRef[]; comfy: ComfyRef[] };
const bytes = readFileSync(fixture('prompt/forward.bin'));
const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
const tensor = (ref: TensorRef): Float32Array => floats.subarray(ref.offset, ref.offset + ref.shape.reduce((a, b) => a * b, 1));
const EMPHASIS: Record<string, EmphasisMode> = { Original: 'original', 'No norm': 'no-norm', Ignore: 'ignore', None: 'none' };
const RELATIVE_TOLERANCE = 1e-6;

const tokenizer = await ClipTokenizer.fromDirectory(fileURLToPath(fixture('tiny-sd/tokenizer')));
const sd1Ids: ChunkTokenIds = { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.eosTokenId, comma: tokenizer.encode(',')[0] };

function maxRelativeError(got: Float32Array, want: Float32Array): number {
  assert.is(got.length, want.length);
  let scale = 0;
  let error = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    error = Math.max(error, Math.abs(got[i]! - want[i]!));
  }
  return error / scale;
}

test("A1111's forward: encoder inputs and weighted states per text", () => {
  let worst = 0;
  for (const ref of refs.forward) {
    const ids = ref.pad === 'eos' ? sd1Ids : { ...sd1Ids, pad: 0 };
    const mode = EMPHASIS[ref.emphasis]!;
    const lines = ref.texts.map((text) => tokenizeLine(text, tokenizer, ids, { emphasis: mode }));
    const batches = batchChunks(lines, ids);
    assert.is(batches.length, ref.encoder_calls.length, ref.texts.join(' / '));
    const encoded = batches.map((chunks, i) => {
      assert.equal(chunks.map((chunk) => encoderInputIds(chunk, ids)), ref.encoder_calls[i]!.input_ids);
      return { chunks, hidden: tensor(ref.encoder_calls[i]!.hidden) };
    });
    const perText = weightBatches(encoded, mode);
    const want = tensor(ref.output);
    const joined = new Float32Array(want.length);
    perText.forEach((out, t) => joined.set(out, t * out.length));
    const error = maxRelativeError(joined, want);
    worst = Math.max(worst, error);
    assert.ok(error <= RELATIVE_TOLERANCE, `${ref.emphasis} ${ref.pad} ${JSON.stringify(ref.texts)}: ${error}`);
  }
  console.log(`  forward: worst relative error ${worst.toExponential(2)}`);
});

test("ComfyUI's weighting", () => {
  for (const ref of refs.comfy) {
    const got = applyComfyWeights(tensor(ref.hidden), tensor(ref.empty_hidden), ref.multipliers.flat());
    const error = maxRelativeError(got, tensor(ref.output));
    assert.ok(error <= RELATIVE_TOLERANCE, `${ref.prompt}: ${error}`);
  }
});

// Structural (copies only, no arithmetic): A1111's pad_cond appends empty-prompt chunks to the shorter
// side; pad_cond_uncond_v0 repeats the negative side's last vector or cuts it.
test('padding a prompt and a negative prompt of different lengths', () => {
  const width = 2;
  const chunk = (value: number): Float32Array => new Float32Array(77 * width).fill(value);
  const join = (...parts: Float32Array[]): Float32Array => Float32Array.from(parts.flatMap((part) => [...part]));
  const empty = chunk(9);
  const long = join(chunk(1), chunk(2));
  const short = chunk(3);
  short.set([4, 5], short.length - width);
  assert.equal(padCondUncond(long, short, width, 'empty-chunks', empty).uncond, join(short, empty));
  assert.equal(padCondUncond(short, long, width, 'empty-chunks', empty).cond, join(short, empty));
  const v0 = padCondUncond(long, short, width, 'v0', empty).uncond;
  assert.equal(v0, join(short, Float32Array.from({ length: 77 * width }, (_, i) => (i % 2 === 0 ? 4 : 5))));
  assert.equal(padCondUncond(short, long, width, 'v0', empty).uncond, chunk(1));
});

test.run();
