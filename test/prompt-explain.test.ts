// The explain structure: schedule ranges cover every step once, chunk tokens decode to the prompt's
// words with A1111's weights (those are checked against A1111 in prompt-chunks.test.ts).
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { explainPrompt, formatExplanation } from '../src/text/prompt-explain.js';

const tokenizer = await ClipTokenizer.fromDirectory(fileURLToPath(new URL('../../test/fixtures/tiny-sd/tokenizer', import.meta.url)));
const ids = { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.eosTokenId, comma: tokenizer.encode(',')[0] };

test('schedule, parts and chunks of an edited, weighted prompt', () => {
  const explanation = explainPrompt('a (red:1.5) [cat:dog:0.5] BREAK grass', 10, tokenizer, ids);
  assert.not.ok(explanation.ambiguous);
  assert.equal(explanation.schedule.map((entry) => [entry.startStep, entry.endStep, entry.text]), [
    [1, 6, 'a (red:1.5) cat BREAK grass'],
    [7, 10, 'a (red:1.5) dog BREAK grass'],
  ]);
  const first = explanation.schedule[0]!;
  assert.equal(first.chunks.map((chunk) => chunk.map((token) => [token.text, token.weight])), [
    [['a', 1], ['red', 1.5], ['cat', 1]],
    [['grass', 1]],
  ]);
  assert.is(first.tokenCount, 76);
  const lines = formatExplanation(explanation);
  assert.is(lines[0], 'steps 1-6 of 10: "a (red:1.5) cat BREAK grass" (76 tokens, 2 chunks)');
  assert.is(lines[1], '  chunk 1 (3/75): a red×1.5 cat');
});

test.run();
