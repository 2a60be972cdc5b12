import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { BlipCaptioner } from '../src/pipeline/interrogate/blip-captioner.js';
import { ClipEncoder } from '../src/pipeline/interrogate/clip-encoder.js';
import { Interrogator } from '../src/pipeline/interrogate/interrogate.js';
import { rankWeight, truncateToFit } from '../src/pipeline/interrogate/rank.js';
import { readTermLists } from '../src/pipeline/interrogate/term-lists.js';
import { WordPieceTokenizer } from '../src/text/wordpiece.js';
import { tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

// References: tools/make_interrogate_fixture.py (transformers 4.46.3 BlipForConditionalGeneration.generate with
// A1111's settings, BertTokenizer, BlipImageProcessor, CLIPImageProcessor; A1111's rank() and clip-interrogator's
// interrogate_fast written out in torch over the same CLIPModel).
const DIR = join(FIXTURES, 'tiny-interrogate');
const BLIP = join(DIR, 'blip');
const CLIP = join(DIR, 'clip');
const TERMS = join(DIR, 'terms');
interface CaptionRef { ids: number[]; decoded: string; caption: string; minLength: number; maxLength: number }
interface CategoryRef { category: string; topn: number; scores: number[]; matches: { term: string; score: number }[] }
interface Case {
  image: string;
  blipPixelsSha256: string;
  clipPixelsSha256: string;
  imageEmbeds: number[];
  captions: CaptionRef[];
  classic: CategoryRef[];
  classicPrompt: string;
  fast: { terms: string[]; cosines: number[]; prompt: string };
}
interface Refs {
  a1111: { min_length: number; max_length: number };
  categories: { category: string; topn: number; items: string[] }[];
  bertDecodes: { ids: number[]; text: string }[];
  bertEncodes: { text: string; ids: number[] }[];
  cases: Case[];
}
const refs = readJson<Refs>(join(DIR, 'refs', 'refs.json'));
const picture = async (c: Case) => (await loadImage(readFileSync(join(DIR, 'refs', c.image)))).rgb;
const sha = (a: Float32Array) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
const cpu = { device: 'cpu' as const, threads: 1 };
// scores and features: ONNX Runtime's float32 against torch's (the graphs differ from torch by <= 1.5e-5)
const TOLERANCE = 1e-5;

const tokenizer = suite('BERT WordPiece tokenizer = transformers BertTokenizer');
tokenizer('encode: lower case, accents, punctuation, unknown words, whitespace', () => {
  const tok = WordPieceTokenizer.fromDirectory(BLIP);
  for (const e of refs.bertEncodes) assert.equal(tok.encode(e.text), e.ids, JSON.stringify(e.text));
});
tokenizer('decode(skip_special_tokens=True): 20 random id sequences, "##" pieces joined, clean-up applied', () => {
  const tok = WordPieceTokenizer.fromDirectory(BLIP);
  for (const d of refs.bertDecodes) assert.is(tok.decode(d.ids), d.text, JSON.stringify(d.ids));
});
tokenizer.run();

const blip = suite('BLIP caption = transformers generate (greedy, A1111 settings)');
blip('pixel_values bit for bit (BlipImageProcessor: 384x384 PIL bicubic, rescale, normalise), token ids and text equal', async () => {
  const captioner = await BlipCaptioner.open(BLIP, cpu);
  try {
    for (const c of refs.cases) {
      const image = await picture(c);
      assert.is(sha(captioner.pixels(image).data), c.blipPixelsSha256, `${c.image} pixel_values`);
      for (const ref of c.captions) {
        const got = await captioner.caption(image, ref);
        assert.equal(got.ids, ref.ids, `${c.image} min ${ref.minLength} max ${ref.maxLength}`);
        assert.is(got.decoded, ref.decoded);
        assert.is(got.text, ref.caption);
      }
    }
  } finally {
    await captioner.release();
  }
});
blip('the cases cover a caption stopped at the end token, one the min_length rule held back, one cut at max_length', () => {
  const lengths = refs.cases.map((c) => c.captions[0]!.ids.length);
  assert.ok(lengths.some((n) => n > refs.a1111.min_length && n < refs.a1111.max_length), `lengths ${lengths}`);
  assert.ok(lengths.includes(refs.a1111.max_length), `lengths ${lengths}`);
});
blip.run();

const rank = suite('CLIP ranking = A1111 rank() and clip-interrogator interrogate_fast');
rank('image features, classic softmax scores of every term, the classic prompt and the fast prompt', async () => {
  const clip = await ClipEncoder.open(CLIP, cpu);
  const interrogator = await Interrogator.open({ blip: BLIP, clip: CLIP, terms: TERMS }, cpu);
  let worst = 0;
  try {
    for (const c of refs.cases) {
      const image = await picture(c);
      assert.is(sha(clip.pixels(image).data), c.clipPixelsSha256, `${c.image} CLIP pixel_values`);
      const features = await clip.imageFeatures(image);
      features.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - c.imageEmbeds[i]!))));
      const classic = await interrogator.run({ image, mode: 'classic', minLength: 24, maxLength: 48, ranks: false });
      assert.is(classic.prompt, c.classicPrompt, c.image);
      assert.equal(classic.terms.map((t) => [t.category, t.term]), c.classic.flatMap((k) => k.matches.map((m) => [k.category, m.term])));
      classic.terms.forEach((t, i) => (worst = Math.max(worst, Math.abs(t.score - c.classic.flatMap((k) => k.matches)[i]!.score / 100))));
      const fast = await interrogator.run({ image, mode: 'fast', minLength: 24, maxLength: 48, ranks: false });
      assert.equal(fast.terms.map((t) => t.term), c.fast.terms, c.image);
      fast.terms.forEach((t, i) => (worst = Math.max(worst, Math.abs(t.score - c.fast.cosines[i]!))));
      assert.is(fast.prompt, c.fast.prompt, c.image);
    }
    console.log(`  img2txt: worst |ONNX - torch| over image features, classic probabilities and fast cosines ${worst.toExponential(2)}`);
    assert.ok(worst <= TOLERANCE, `worst ${worst}`);
  } finally {
    await Promise.all([clip.release(), interrogator.release()]);
  }
});
rank('the fast prompt of some case is cut to 77 tokens, and some keeps terms', () => {
  assert.ok(refs.cases.some((c) => c.fast.prompt.split(', ').length - 1 < c.fast.terms.length));
  assert.ok(refs.cases.some((c) => c.fast.prompt.length > c.captions[0]!.caption.length));
});
rank('text features are cached per list and model: a second interrogator reads them, a damaged entry is replaced', async () => {
  const cache = tempDir('diffuse-img2txt-cache-');
  const image = await picture(refs.cases[1]!);
  const run = async () => {
    const it = await Interrogator.open({ blip: BLIP, clip: CLIP, terms: TERMS, featureCache: cache }, cpu);
    try {
      return (await it.run({ image, mode: 'classic', minLength: 24, maxLength: 48, ranks: false })).prompt;
    } finally {
      await it.release();
    }
  };
  const first = await run();
  const entries = readdirSync(cache).sort();
  assert.is(entries.length, refs.categories.length);
  const bytes = entries.map((e) => readFileSync(join(cache, e)));
  assert.is(await run(), first);
  writeFileSync(join(cache, entries[0]!), 'garbage');
  assert.is(await run(), refs.cases[1]!.classicPrompt);
  assert.equal(readFileSync(join(cache, entries[0]!)), bytes[0]);
});
rank.run();

const parts = suite('A1111 details');
parts("term lists: topN from the file's stem as A1111 reads it (flavors.top3 -> 1, lighting.top2.list -> 2), names sorted", () => {
  const lists = readTermLists(TERMS);
  assert.equal(lists.map((l) => [l.name, l.topn, l.items]), refs.categories.map((c) => [c.category, c.topn, c.items]));
  assert.equal(lists.map((l) => l.topn), [1, 1, 2, 1, 1]);
});
parts('term lists: blank lines kept as terms, CR/CRLF line ends, only the first 1500 lines', () => {
  const dir = tempDir('diffuse-img2txt-terms-');
  writeFileSync(join(dir, 'a.txt'), ` one \r\n\r\ntwo\rthree\n`);
  writeFileSync(join(dir, 'b.txt'), Array.from({ length: 1600 }, (_, i) => `t${i}`).join('\n'));
  const [a, b] = readTermLists(dir);
  assert.equal(a!.items, ['one', '', 'two', 'three']);
  assert.is(b!.items.length, 1500);
  assert.is(b!.items.at(-1), 't1499');
});
parts("ranks as A1111 writes them: float32 steps, Python's .3f (halfway values to even)", () => {
  assert.is(rankWeight(0.0625), '0.062');
  assert.is(rankWeight(0.1875), '0.188');
  assert.is(rankWeight(0.5), '0.500');
  assert.is(rankWeight(0.12345), '0.123');
});
parts("clip-interrogator's cut: the next part is measured without its separator", () => {
  const count = (t: string) => t.length; // one token per character
  assert.is(truncateToFit('aa, bb, cc', count, 5), 'aa, bb');
  assert.is(truncateToFit('aa, bb, cc', count, 4), 'aa');
});
parts('a BLIP folder missing its decoder is refused in one line naming it', async () => {
  const dir = tempDir('diffuse-img2txt-blip-');
  cpSync(BLIP, dir, { recursive: true });
  const { rmSync } = await import('node:fs');
  rmSync(join(dir, 'onnx', 'text_decoder_model.onnx'));
  await BlipCaptioner.open(dir, cpu).then(
    () => assert.unreachable('opened'),
    (err: Error) => assert.match(err.message, /has no onnx\/text_decoder_model\.onnx/),
  );
});
parts.run();
