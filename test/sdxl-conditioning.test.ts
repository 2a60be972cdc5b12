import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeConditioning, type ScheduledConditioning } from '../src/pipeline/conditioning.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import type { PromptWeighting } from '../src/pipeline/types.js';
import type { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { encoderInputIds, tokenizeLine } from '../src/text/prompt-chunks.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';

/**
 * SDXL prompt weighting against the tools' own code (tools/make_sdxl_conditioning_refs.py, on tiny-sdxl's torch
 * encoders): --prompt-weighting a1111 against A1111's two SDXL embedders (FrozenCLIPEmbedderForSDXLWithCustomWords,
 * FrozenOpenCLIPEmbedder2WithCustomWords: chunks, emphasis "Original" per encoder) joined as sgm's conditioner
 * joins them, for every denoiser call of the schedule; --prompt-weighting comfy against ComfyUI's
 * SDXLTokenizer + SDXLClipModel.encode_token_weights where ComfyUI reads the prompt into the same tokens and
 * weights. diffuse's 'comfy' keeps A1111's grammar and chunking (README); where ComfyUI's own reading differs
 * ([], BREAK, prompt editing, an explicit weight inside another group, whole segments kept together instead of
 * A1111's comma backtracking) the test checks that the readings do differ, so a change on either side shows.
 *
 * Tolerance 1e-5 of the reference's largest magnitude, as the SD 1.x conditioning test: ONNX Runtime vs torch on
 * the text encoders, then a few float32 products and (A1111) a ratio of two means.
 */
const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'sdxl-conditioning');

interface ArrayRef {
  file: string;
  shape: number[];
}
/** Per encoder (l, g), per chunk, [token id as encoded, weight]. */
type Reading = Record<'l' | 'g', Array<Array<[number, number]>>>;
interface Case {
  name: string;
  prompt: string;
  steps: number;
  a1111: Array<{ end_step: number; text: string; hidden: ArrayRef; pooled: ArrayRef }>;
  calls: number[];
  a1111_reading: Reading;
  comfy_same_reading: boolean;
  comfy: { reading: Reading; hidden?: ArrayRef; pooled?: ArrayRef };
}

const refs = readJson<{ cases: Case[] }>(join(DIR, 'refs.json.gz'));
const test = suite("SDXL prompt weighting = A1111's and ComfyUI's SDXL conditioning");
const scratch = mkdtempSync(join(tmpdir(), 'diffuse-sdxl-cond-'));
let bundle: ModelBundle;

test.before(async () => {
  bundle = await loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', threads: 1, graphCache: join(scratch, 'graphs') });
});
test.after(async () => {
  await bundle.release();
});

/** diffuse's reading of a prompt with one encoder's tokenizer: A1111's chunks, ids as the encoder gets them. */
function readingOf(tokenizer: ClipTokenizer, prompt: string): Array<Array<[number, number]>> {
  const ids = { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.padTokenId, comma: tokenizer.encode(',')[0] };
  return tokenizeLine(prompt, { encode: (text) => tokenizer.encode(text) }, ids).chunks.map((chunk) => {
    const input = encoderInputIds(chunk, ids);
    return input.map((id, i): [number, number] => [id, chunk.multipliers[i]!]);
  });
}

function diffuseReading(prompt: string): Reading {
  const [l, g] = bundle.sdxl!.encoders;
  return { l: readingOf(l!.tokenizer, prompt), g: readingOf(g!.tokenizer, prompt) };
}

/** Distance of diffuse's conditioning at one denoiser call from a reference's hidden states and pooled output, relative to their largest magnitude. */
function errors(scheduled: ScheduledConditioning, call: number, hidden: ArrayRef, pooled: ArrayRef) {
  const cond = scheduled.at(call);
  assert.equal([cond.tokens, cond.width], hidden.shape, `call ${call}: shape`);
  return { hidden: compare(cond.data, readF32(join(DIR, hidden.file))).relToMax, pooled: compare(cond.added!.textEmbeds, readF32(join(DIR, pooled.file))).relToMax };
}

test('the references cover what they claim', () => {
  const byName = new Map(refs.cases.map((c) => [c.name, c]));
  assert.is(byName.get('long')!.a1111[0]!.hidden.shape[0], 2 * 77, 'long prompt spans two chunks');
  assert.is(byName.get('editing')!.a1111.length, 2, 'prompt editing gives two texts');
  assert.equal(
    refs.cases.filter((c) => c.comfy_same_reading).map((c) => c.name),
    ['plain', 'emphasis', 'nested', 'long', 'empty'],
  );
});

for (const c of refs.cases) {
  test(`${c.name}: diffuse reads ${JSON.stringify(c.prompt.slice(0, 40))} as A1111 (ids and weights per encoder)${c.comfy_same_reading ? ' and ComfyUI' : ', ComfyUI otherwise'}`, () => {
    const mine = diffuseReading(c.prompt);
    assert.equal(mine, c.a1111_reading);
    if (c.comfy_same_reading) assert.equal(mine, c.comfy.reading);
    else assert.not.equal(mine, c.comfy.reading, 'ComfyUI now reads this prompt as diffuse: compare the hidden states');
  });

  test(`${c.name}: --prompt-weighting a1111 = A1111's SDXL conditioner on every denoiser call`, async () => {
    const scheduled = await encodeConditioning(bundle, c.prompt, c.steps, 'a1111');
    assert.is(scheduled.texts, c.a1111.length, 'scheduled texts');
    let worst = { hidden: 0, pooled: 0 };
    for (const [call, index] of c.calls.entries()) {
      const ref = c.a1111[index]!;
      const e = errors(scheduled, call, ref.hidden, ref.pooled);
      assert.ok(e.hidden <= TOLERANCE && e.pooled <= TOLERANCE, `call ${call} (text ${index}): hidden ${e.hidden}, pooled ${e.pooled}`);
      worst = { hidden: Math.max(worst.hidden, e.hidden), pooled: Math.max(worst.pooled, e.pooled) };
    }
    console.log(`  ${c.name} a1111: hidden ${worst.hidden.toExponential(2)}, pooled ${worst.pooled.toExponential(2)} of max`);
  });

  if (c.comfy_same_reading) {
    test(`${c.name}: --prompt-weighting comfy = ComfyUI's SDXLClipModel.encode_token_weights`, async () => {
      const e = errors(await encodeConditioning(bundle, c.prompt, c.steps, 'comfy'), 0, c.comfy.hidden!, c.comfy.pooled!);
      assert.ok(e.hidden <= TOLERANCE && e.pooled <= TOLERANCE, `hidden ${e.hidden}, pooled ${e.pooled}`);
      console.log(`  ${c.name} comfy: hidden ${e.hidden.toExponential(2)}, pooled ${e.pooled.toExponential(2)} of max`);
    });
  }
}

test.run();

/**
 * --clip-skip on SDXL, read as each prompt weighting's reference reads it (src/pipeline/load.ts sdxlLayerFromEnd):
 * a1111 as A1111's own embedders at Clip skip 2 and 3 (tools/make_sdxl_clip_skip_refs.py: with its default
 * "Clip skip SDXL" option off, the conditioning of Clip skip 1, byte for byte; diffuse does not follow the option
 * on, whose clip skip 3 moves clip_l alone); comfy as ComfyUI's CLIPSetLastLayer(-n) on both encoders: -2 is
 * SDXL's own penultimate layer (ComfyUI's SDXLClipModel conditioning, as above), -3 reads hidden_states[-3] of
 * both, unnormed, the states diffusers' encode_prompt(clip_skip=1) reads (test/fixtures/sdxl-pipeline's
 * reference of it); none (diffusers' clip_skip = n - 1) is test/sdxl-pipeline.test.ts's.
 */
const skip = suite('SDXL clip skip as A1111 and ComfyUI read it');
const skipRefs = readJson<{ cases: Array<{ name: string; prompt: string; a1111_as_case: string; clip_l_skip_3: { hidden: ArrayRef } }> }>(join(DIR, 'clip-skip', 'refs.json'));
const skipBundles = new Map<string, Promise<ModelBundle>>();
const skipBundle = (clipSkip: number, reading: PromptWeighting): Promise<ModelBundle> => {
  const key = `${clipSkip}-${reading}`;
  if (!skipBundles.has(key)) skipBundles.set(key, loadModel(join(FIXTURES, 'tiny-sdxl'), { device: 'cpu', threads: 1, clipSkip, clipSkipReading: reading, graphCache: join(scratch, 'graphs') }));
  return skipBundles.get(key)!;
};
skip.after(async () => {
  for (const b of skipBundles.values()) await (await b).release();
  rmSync(scratch, { recursive: true, force: true });
});

for (const c of skipRefs.cases) {
  const recorded = refs.cases.find((r) => r.name === c.a1111_as_case)!;
  for (const n of [2, 3]) {
    skip(`${c.name}: --clip-skip ${n} --prompt-weighting a1111 = A1111's SDXL conditioner at Clip skip ${n} (the option off: the penultimate layer)`, async () => {
      const scheduled = await encodeConditioning(await skipBundle(n, 'a1111'), c.prompt, 10, 'a1111');
      const e = errors(scheduled, 0, recorded.a1111[0]!.hidden, recorded.a1111[0]!.pooled);
      assert.ok(e.hidden <= TOLERANCE && e.pooled <= TOLERANCE, `hidden ${e.hidden}, pooled ${e.pooled}`);
      if (n === 3) {
        const optionOn = compare(scheduled.at(0).data, readF32(join(DIR, 'clip-skip', c.clip_l_skip_3.hidden.file)));
        assert.ok(optionOn.relToMax > 1e-2, `A1111 with "Clip skip SDXL" on moves clip_l: ${optionOn.relToMax} of max from it`);
      }
    });
  }
  if (recorded.comfy_same_reading) {
    skip(`${c.name}: --clip-skip 2 --prompt-weighting comfy = ComfyUI's SDXL conditioning (CLIPSetLastLayer -2 is SDXL's own layer)`, async () => {
      const e = errors(await encodeConditioning(await skipBundle(2, 'comfy'), c.prompt, 10, 'comfy'), 0, recorded.comfy.hidden!, recorded.comfy.pooled!);
      assert.ok(e.hidden <= TOLERANCE && e.pooled <= TOLERANCE, `hidden ${e.hidden}, pooled ${e.pooled}`);
    });
  }
}

skip("--clip-skip 3 --prompt-weighting comfy reads hidden_states[-3] of both encoders: diffusers' encode_prompt(clip_skip=1)", async () => {
  const dir = join(FIXTURES, 'sdxl-pipeline');
  type Blob = { file: string; shape: number[] };
  const manifest = readJson<{ conditioning: Array<{ name: string; prompt_embeds: Blob; negative_prompt_embeds: Blob; pooled: Blob; negative_pooled: Blob }> }>(join(dir, 'cases.json'));
  const ref = manifest.conditioning.find((r) => r.name === 'base.clip-skip-1')!;
  const bundle = await skipBundle(3, 'comfy');
  for (const [prompt, embeds, pooled] of [
    ['a photo of an astronaut riding a horse on mars', ref.prompt_embeds, ref.pooled],
    ['blurry, low quality', ref.negative_prompt_embeds, ref.negative_pooled],
  ] as const) {
    const cond = (await encodeConditioning(bundle, prompt, 10, 'comfy', new Float32Array(6))).at(0);
    const e = { hidden: compare(cond.data, readF32(join(dir, embeds.file))).relToMax, pooled: compare(cond.added!.textEmbeds, readF32(join(dir, pooled.file))).relToMax };
    assert.ok(e.hidden <= TOLERANCE && e.pooled <= TOLERANCE, `${prompt}: hidden ${e.hidden}, pooled ${e.pooled}`);
  }
});

skip.run();
