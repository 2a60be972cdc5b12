import { join } from 'node:path';
// Chunking against A1111's own FrozenCLIPEmbedderWithCustomWords.tokenize_line (imported with stubs by
// tools/make_prompt_refs.py, tokens from transformers' CLIPTokenizer on the real CLIP vocabulary), for
// comma backtracking 20 (default), 0 and 5 and with emphasis off. Token ids and the token count are
// compared exactly; multipliers too (same float64 operations; 1e-12 only guards the JSON round trip).
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { PromptError } from '../src/text/prompt-error.js';
import { CHUNK_TOKENS, emptyChunk, encoderInputIds, tokenizeLine, type ChunkTokenIds, type EmphasisMode } from '../src/text/prompt-chunks.js';

interface ChunkRef {
  prompt: string;
  emphasis: string;
  comma_padding_backtrack: number;
  result?: { token_count: number; chunks: Array<{ tokens: number[]; multipliers: number[] }> };
  error?: string;
}
const fixture = (path: string): URL => new URL(`../../test/fixtures/${path}`, import.meta.url);
const refs = readJson<{ chunks: ChunkRef[] }>(join(FIXTURES, 'prompt/refs.json.gz'));
const TOLERANCE = 1e-12;
const EMPHASIS: Record<string, EmphasisMode> = { Original: 'original', 'No norm': 'no-norm', Ignore: 'ignore', None: 'none' };

const tokenizer = await ClipTokenizer.fromDirectory(fileURLToPath(fixture('tiny-sd/tokenizer')));
const ids: ChunkTokenIds = { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.eosTokenId, comma: tokenizer.encode(',')[0] };

test('every chunking equals A1111', () => {
  const failures: string[] = [];
  let multiChunk = 0;
  for (const ref of refs.chunks) {
    const options = { emphasis: EMPHASIS[ref.emphasis]!, commaPaddingBacktrack: ref.comma_padding_backtrack };
    const label = `${JSON.stringify(ref.prompt.slice(0, 60))} ${ref.emphasis}/${ref.comma_padding_backtrack}`;
    let got;
    try {
      got = tokenizeLine(ref.prompt, tokenizer, ids, options);
    } catch (err) {
      if (!(err instanceof PromptError)) throw err;
      if (ref.error !== 'ValueError') failures.push(`${label}: PromptError, A1111 ${JSON.stringify(ref.result)}`);
      continue;
    }
    const want = ref.result;
    if (want === undefined) {
      failures.push(`${label}: no error, A1111 ${ref.error}`);
      continue;
    }
    if (want.chunks.length > 1) multiChunk++;
    const same = got.tokenCount === want.token_count && got.chunks.length === want.chunks.length
      && got.chunks.every((chunk, i) => JSON.stringify(chunk.tokens) === JSON.stringify(want.chunks[i]!.tokens)
        && chunk.multipliers.every((m, j) => Math.abs(m - want.chunks[i]!.multipliers[j]!) <= TOLERANCE));
    if (!same) failures.push(`${label}: got ${JSON.stringify(got).slice(0, 300)}`);
  }
  assert.ok(refs.chunks.length > 700);
  assert.ok(multiChunk > 20, 'long prompts are covered');
  assert.equal(failures.slice(0, 5), [], `${failures.length} of ${refs.chunks.length} differ`);
});

test('chunks are BOS + 75 + EOS; SD2 padding replaces what follows the first EOS', () => {
  const { chunks } = tokenizeLine('a cat BREAK a dog', tokenizer, ids);
  assert.is(chunks.length, 2);
  for (const chunk of chunks) assert.is(chunk.tokens.length, CHUNK_TOKENS);
  const sd2 = { ...ids, pad: 0 };
  const input = encoderInputIds(chunks[0]!, sd2);
  const end = input.indexOf(ids.eos);
  assert.equal(input.slice(0, end + 1), chunks[0]!.tokens.slice(0, end + 1));
  assert.ok(input.slice(end + 1).every((id) => id === 0));
  assert.equal(emptyChunk(ids).tokens, tokenizeLine('', tokenizer, ids).chunks[0]!.tokens);
});

test.run();
