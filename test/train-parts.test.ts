import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { encodeEmbeddingSafetensors } from '../src/text/embedding-write.js';
import { parseEmbedding } from '../src/text/embeddings.js';
import { parseSafetensors } from '../src/text/safetensors.js';
import { DIFFUSERS_ADAMW, adamWStep, newAdamWState } from '../src/train/adamw.js';
import { lrSchedule, type LrScheduleName } from '../src/train/lr-schedule.js';
import { captionIds, initialVectors, placeholderFor } from '../src/train/placeholder.js';
import { OBJECT_TEMPLATES, fillTemplate, readTemplateFile } from '../src/train/templates.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';

/**
 * The trainer's parts against their references (tools/make_train_refs.py): diffusers'
 * get_scheduler rates, torch's AdamW, the caption ids diffusers' tokenizer gives once the
 * placeholder tokens are added; A1111's rate strings as its LearnRateScheduler reads them; the
 * embedding file as the safetensors library lays it out.
 */
const REFS = join(FIXTURES, 'train');
interface ArrayRef {
  file: string;
  shape: number[];
}
const refs = readJson<{
  token: string;
  vectors: number;
  placeholder_ids: number[];
  schedules: Record<string, number[]>;
  adamw: { rates: number[]; initial: ArrayRef; grads: ArrayRef; final: ArrayRef };
  curve: { first_ids: number[][] };
}>(join(REFS, 'refs.json.gz'));
const read = (r: ArrayRef) => readF32(join(REFS, r.file));

test("rate schedules equal diffusers' get_scheduler step for step (1e-12 relative)", () => {
  for (const [key, want] of Object.entries(refs.schedules)) {
    const [name, warmup] = key.split('/') as [LrScheduleName, string];
    if (name === 'constant' && warmup !== '0') {
      // diffusers ignores the warmup of "constant" (the reference's rates are all 0.01); diffuse refuses it instead of ignoring it.
      assert.ok(want.every((r) => r === 0.01));
      assert.throws(() => lrSchedule({ lr: '0.01', schedule: name, warmup: Number(warmup), steps: 50 }), /--lr-warmup needs a schedule that warms up/);
      continue;
    }
    const s = lrSchedule({ lr: '0.01', schedule: name, warmup: Number(warmup), steps: 50, cycles: name === 'cosine_with_restarts' ? 2 : 1 });
    want.forEach((rate, k) => assert.ok(Math.abs(s.rate(k) - rate) <= 1e-12 * Math.max(rate, 1e-3), `${key} step ${k}: ${s.rate(k)} vs ${rate}`));
  }
});

test("A1111's rate strings: each rate until its step, the last to the end or training stops", () => {
  const s = lrSchedule({ lr: '0.005:100, 1e-3:1000, 1e-5', schedule: 'constant', warmup: 0, steps: 2000 });
  assert.equal([0, 99, 100, 999, 1000, 1999].map((k) => s.rate(k)), [0.005, 0.005, 1e-3, 1e-3, 1e-5, 1e-5]);
  assert.is(s.steps, 2000);
  const early = lrSchedule({ lr: '0.01:50, 0.001:120', schedule: 'constant', warmup: 0, steps: 300 });
  assert.is(early.steps, 120, 'training ends where the schedule does');
  assert.is(lrSchedule({ lr: '0.02:-1', schedule: 'constant', warmup: 0, steps: 10 }).rate(9), 0.02);
  assert.throws(() => lrSchedule({ lr: '0.1:1:2', schedule: 'constant', warmup: 0, steps: 10 }), /cannot read/);
});

test('AdamW equals torch.optim.AdamW over six steps (float32; seen bit for bit)', () => {
  const param = read(refs.adamw.initial);
  const grads = read(refs.adamw.grads);
  const state = newAdamWState(param.length);
  refs.adamw.rates.forEach((rate, i) => adamWStep(param, grads.subarray(i * param.length, (i + 1) * param.length), state, rate, DIFFUSERS_ADAMW));
  const { relToMax, maxAbs } = compare(param, read(refs.adamw.final));
  console.log(`  AdamW after 6 steps: ${maxAbs.toExponential(2)} (${relToMax.toExponential(2)} of max)`);
  assert.ok(relToMax <= 1e-7, `off by ${relToMax} of max`);
});

test("caption ids equal diffusers' tokenizer with the placeholder tokens added", async () => {
  const tokenizer = await ClipTokenizer.fromDirectory(join(TINY_SD, 'tokenizer'));
  const placeholder = placeholderFor(refs.token, refs.vectors, 49408);
  assert.equal(placeholder.ids, refs.placeholder_ids);
  // The reference's first batch used these two templates (its draws are checked in train-reference.test.ts).
  const texts = OBJECT_TEMPLATES.map((t) => captionIds(tokenizer, fillTemplate(t, ''), placeholder));
  for (const ids of refs.curve.first_ids) assert.ok(texts.some((t) => JSON.stringify(t) === JSON.stringify(ids)), `ids ${ids.slice(0, 10).join(' ')} … come from a template`);
});

test("A1111 template files: [name], [filewords], {}; a file without a place for the token is refused", () => {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-templates-'));
  writeFileSync(join(dir, 'ok.txt'), 'a photo of [name], [filewords]\n\n{} in the style of things\n');
  const lines = readTemplateFile(join(dir, 'ok.txt'));
  assert.equal(lines.map((l) => fillTemplate(l, 'red hat')), ['a photo of \u0000, red hat', '\u0000 in the style of things']);
  writeFileSync(join(dir, 'bad.txt'), 'a photo of something\n');
  assert.throws(() => readTemplateFile(join(dir, 'bad.txt')), /has no \[name\]/);
  assert.throws(() => readTemplateFile(join(dir, 'none.txt')), /cannot read/);
});

test("initial vectors: A1111's i*k/n rule (one token: every vector copies it, as diffusers)", () => {
  const table = Float32Array.from({ length: 5 * 2 }, (_, i) => i);
  assert.equal(Array.from(initialVectors(table, 2, [3], 2)), [6, 7, 6, 7]);
  assert.equal(Array.from(initialVectors(table, 2, [1, 4], 3)), [2, 3, 2, 3, 8, 9]);
});

test('the embedding file: aligned header, emb_params, metadata; read back bit for bit', () => {
  const vectors = Float32Array.from([0.1, -2.5, 3e-8, 1e30, -0, 7]);
  const bytes = encodeEmbeddingSafetensors(vectors, 2, 3, { token: '<x>', steps: '5' });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(headerLength % 8, 0);
  const file = parseSafetensors(bytes);
  assert.equal(file.metadata, { token: '<x>', steps: '5' });
  const emb = parseEmbedding(bytes, '<x>.safetensors');
  assert.equal(Array.from(emb.vectors), Array.from(vectors));
  assert.is(emb.name, '<x>');
});

test.run();
