import { join } from 'node:path';
// Emphasis parsing against A1111's own parse_prompt_attention (tools/make_prompt_refs.py). Texts are
// compared exactly; weights too, since the same float64 operations run in the same order (the 1e-12
// bound only guards the JSON round trip, which is exact for Python's repr of floats).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { parsePromptAttention } from '../src/text/prompt-attention.js';
import { PromptError } from '../src/text/prompt-error.js';

interface AttentionRef {
  prompt: string;
  result?: Array<[string, number]>;
  error?: string;
}
const refs = readJson<{ attention: AttentionRef[] }>(join(FIXTURES, 'prompt/refs.json.gz'));
const TOLERANCE = 1e-12;

test('every parse equals A1111', () => {
  const failures: string[] = [];
  let maxError = 0;
  for (const ref of refs.attention) {
    let got: Array<[string, number]> | 'PromptError';
    try {
      got = parsePromptAttention(ref.prompt).map((part) => [part.text, part.weight]);
    } catch (err) {
      if (!(err instanceof PromptError)) throw err;
      got = 'PromptError';
    }
    if (ref.error !== undefined || got === 'PromptError') {
      if (!(ref.error === 'ValueError' && got === 'PromptError')) failures.push(`${JSON.stringify(ref.prompt)}: got ${JSON.stringify(got)}, A1111 ${ref.error ?? JSON.stringify(ref.result)}`);
      continue;
    }
    const want = ref.result!;
    const same = got.length === want.length && got.every(([text, weight], i) => {
      const error = Math.abs(weight - want[i]![1]);
      maxError = Math.max(maxError, error);
      return text === want[i]![0] && error <= TOLERANCE;
    });
    if (!same) failures.push(`${JSON.stringify(ref.prompt)}: got ${JSON.stringify(got)}, A1111 ${JSON.stringify(want)}`);
  }
  assert.ok(refs.attention.length > 3000);
  assert.equal(failures.slice(0, 10), [], `${failures.length} of ${refs.attention.length} differ`);
  assert.is(maxError, 0);
});

test('A1111 raises ValueError on weights float() rejects', () => {
  assert.ok(refs.attention.some((ref) => ref.error === 'ValueError'));
  assert.throws(() => parsePromptAttention('(x:1.2.3)'), (err: unknown) => err instanceof PromptError);
});

test.run();
