import { pythonFloat } from '../src/image/python-float.js';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type GenerationParameters, formatInfotext, parseInfotext } from '../src/image/infotext.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { insertPngText } from '../src/image/png-text.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`../../test/fixtures/image/${name}`, import.meta.url));

// Expected values below are read off A1111's own format (the docstring of parse_generation_parameters and
// create_infotext's key order / quote rule in modules/processing.py and modules/infotext_utils.py).

test('parses the example infotext from A1111 parse_generation_parameters docstring', () => {
  const text =
    "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate\n" +
    'Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing\n' +
    'Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b';
  assert.equal(parseInfotext(text), {
    prompt: text.split('\n')[0],
    negativePrompt: text.split('\n')[1]!.slice('Negative prompt: '.length),
    steps: 20,
    sampler: 'Euler a',
    cfgScale: 7,
    seed: 965400086,
    width: 512,
    height: 512,
    modelHash: '45dee52b',
    extra: {},
    // A1111's UI writes this whole-number float as an int; the spelling is kept for writing it back.
    spelled: { cfgScale: '7' },
  });
  assert.is(formatInfotext(parseInfotext(text)), text);
});

test('formats in create_infotext order with A1111 quoting', () => {
  const params: GenerationParameters = {
    prompt: 'a cat\non a mat',
    negativePrompt: 'blurry',
    version: 'v1.10.1',
    seed: 42,
    cfgScale: 7.5,
    steps: 20,
    sampler: 'DPM++ 2M',
    scheduleType: 'Karras',
    width: 512,
    height: 768,
    model: 'v1-5-pruned-emaonly',
    modelHash: '6ce0161689',
    denoisingStrength: 0.75,
    clipSkip: 2,
    extra: { 'Lora hashes': 'add_detail: 7c6bad76eb54', 'Hires upscale': '2', 'Token merging ratio': '0.5', Note: 'say "hi"' },
  };
  assert.is(
    formatInfotext(params),
    'a cat\non a mat\nNegative prompt: blurry\n' +
      'Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 42, Size: 512x768, ' +
      'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.75, Clip skip: 2, ' +
      'Token merging ratio: 0.5, Lora hashes: "add_detail: 7c6bad76eb54", Hires upscale: 2, Note: say "hi", Version: v1.10.1',
  );
  assert.equal(parseInfotext(formatInfotext(params)), params);
});

test('quoting: comma, colon and newline JSON-quoted (A1111); empty, edge-space and leading-quote values too', () => {
  const line = (extra: Record<string, string>): string =>
    formatInfotext({ prompt: 'p', negativePrompt: '', steps: 1, seed: 2, cfgScale: 3, extra }).split('\n')[1]!;
  assert.is(line({ Ab: 'x, y' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Ab: "x, y"');
  assert.is(line({ Ab: 'k: v' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Ab: "k: v"');
  assert.is(line({ Ab: 'two\nlines\t"q"\\' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Ab: "two\\nlines\\t\\"q\\"\\\\"');
  assert.is(line({ Ab: 'mid"quote' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Ab: mid"quote');
  assert.is(line({ Ab: '' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Ab: ""');
  assert.is(line({ Ab: '"quoted"' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Ab: "\\"quoted\\""');
  assert.is(line({ Ab: ' pad' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Ab: " pad"');
  assert.is(line({ Tiling: 'Tiling' }), 'Steps: 1, CFG scale: 3.0, Seed: 2, Tiling'); // A1111 writes k alone when v == k
  assert.throws(() => line({ 'bad,key': 'v' }), RangeError);
  assert.throws(() => formatInfotext({ prompt: '', negativePrompt: '', steps: 2.5, extra: {} }), RangeError);
});

test('what A1111 itself reads differently: fewer than 3 pairs, "Negative prompt:" lines, edge whitespace', () => {
  // Last line with < 3 key: value pairs is prompt text, here part of the negative prompt.
  assert.equal(parseInfotext('café\nNegative prompt: ugly\nSteps: 20, Seed: 1'), {
    prompt: 'café',
    negativePrompt: 'ugly\nSteps: 20, Seed: 1',
    extra: {},
  });
  const text = formatInfotext({ prompt: '  a\n\tNegative prompt: b  \nc', negativePrompt: '', steps: 1, seed: 2, cfgScale: 3, extra: {} });
  assert.equal(parseInfotext(text), { prompt: 'a', negativePrompt: 'b\nc', steps: 1, seed: 2, cfgScale: 3, extra: {} });
});

test('parse: quoted values, bad numbers kept in extra, Size not WxH, missing fields, Python whitespace and \\w', () => {
  const p = parseInfotext(
    '\u3000 prompt \ufeff \nSteps: many, Size: 512, Seed: "12", Größe: 3, Lora hashes: "a: 1, b: 2", Empty: , Broken: "x\\"',
  );
  assert.equal(p, {
    prompt: 'prompt \ufeff', // Python's strip() removes U+3000 but not U+FEFF
    negativePrompt: '',
    seed: 12,
    extra: { Steps: 'many', Size: '512', 'Größe': '3', 'Lora hashes': 'a: 1, b: 2', Broken: '"x\\"' },
  });
  assert.equal(parseInfotext(''), { prompt: '', negativePrompt: '', extra: {} });
  assert.equal(parseInfotext('just a prompt'), { prompt: 'just a prompt', negativePrompt: '', extra: {} });
});

// Deterministic generator for the round-trip property.
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['a', 'cat', ' ', ' ', ',', ':', '"', '\\', '\n', '\t', '(', ')', '日本', '🐱', 'é', 'e\u0301', '\u3000',
  'Negative prompt:', 'Steps: 20', '{x}', '\r', '\u2028', 'Size: 5x5'];
const KEY_PIECES = ['Lora', 'hashes', ' ', '-', '/', 'ADetailer', 'x2', 'Größe', '_'];

function randomText(rand: () => number, maxPieces: number, pieces = PIECES): string {
  let s = '';
  const n = Math.floor(rand() * maxPieces);
  for (let i = 0; i < n; i++) s += pieces[Math.floor(rand() * pieces.length)];
  return s;
}

const PY_WS = /^[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

// The documented normalisation A1111 applies to prompt lines: each line stripped, leading blank lines dropped.
const normalisePrompt = (s: string): string => s.split('\n').map((l) => l.replace(PY_WS, '')).join('\n').replace(/^\n+/, '');

test('round trip: parse(format(p)) == p up to the documented prompt normalisation (2000 awkward cases)', () => {
  const rand = mulberry32(20240611);
  for (let i = 0; i < 2000; i++) {
    let prompt = randomText(rand, 12);
    let negativePrompt = rand() < 0.3 ? '' : randomText(rand, 8);
    // A line starting with "Negative prompt:" is not representable (tested above); keep it mid-line here.
    const fix = (s: string): string => s.split('\n').map((l) => (l.replace(PY_WS, '').startsWith('Negative prompt:') ? `x ${l}` : l)).join('\n');
    prompt = fix(prompt);
    negativePrompt = fix(negativePrompt);
    const extra: Record<string, string> = {};
    for (let k = Math.floor(rand() * 4); k > 0; k--) {
      const key = `Kx${randomText(rand, 4, KEY_PIECES)}`;
      const value = randomText(rand, 6);
      if (value !== key) extra[key] = value;
    }
    const params: GenerationParameters = {
      prompt,
      negativePrompt,
      steps: 1 + Math.floor(rand() * 150),
      sampler: rand() < 0.5 ? 'Euler a' : 'DPM++ 2M SDE',
      cfgScale: Math.round(rand() * 60) / 2,
      seed: Math.floor(rand() * 2 ** 32),
      width: 64 * (1 + Math.floor(rand() * 32)),
      height: 64 * (1 + Math.floor(rand() * 32)),
      denoisingStrength: rand(),
      model: randomText(rand, 5) || 'm',
      extra,
    };
    const text = formatInfotext(params);
    const expected = { ...params, prompt: normalisePrompt(prompt), negativePrompt: normalisePrompt(negativePrompt) };
    assert.equal(parseInfotext(text), expected, JSON.stringify(text));
  }
});

test('PNG metadata: A1111 parameters, ComfyUI prompt/workflow, other text, none', async () => {
  const a1111 = readGenerationMetadata(fixture('a1111.png'));
  assert.is(a1111.kind, 'a1111');
  if (a1111.kind === 'a1111') {
    assert.is(a1111.parameters.prompt, 'a cat, sitting');
    assert.is(a1111.parameters.scheduleType, 'Karras');
    assert.is(a1111.parameters.version, 'v1.10.1');
    assert.is(formatInfotext(a1111.parameters), a1111.infotext); // what A1111 wrote, we write back identically
  }
  const comfy = readGenerationMetadata(fixture('comfyui.png'));
  assert.equal(comfy, {
    kind: 'comfyui',
    prompt: { 3: { class_type: 'KSampler', inputs: { seed: 42, steps: 20 } } },
    workflow: { last_node_id: 9, nodes: [{ id: 3, type: 'KSampler' }] },
  });
  const plain = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#000' } }).png().toBuffer();
  assert.equal(readGenerationMetadata(plain), { kind: 'none' });
  assert.equal(readGenerationMetadata(insertPngText(plain, [{ keyword: 'Comment', text: '{}' }])), { kind: 'unknown', keywords: ['Comment'] });
});

test("floats as A1111 writes them: Python's repr (CFG scale: 7.0, 1e-05, 1e+16)", () => {
  // repr() of each value, printed by CPython 3.11.
  const cases: Array<[number, string]> = [
    [7, '7.0'], [7.5, '7.5'], [0.75, '0.75'], [1e-5, '1e-05'], [0.0001, '0.0001'], [0.00012345, '0.00012345'], [1e16, '1e+16'],
    [1.5e16, '1.5e+16'], [123456789012345.6, '123456789012345.6'], [1e15, '1000000000000000.0'], [0.1 + 0.2, '0.30000000000000004'],
    [100, '100.0'], [3e-7, '3e-07'], [-2.5, '-2.5'], [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e+308'], [0.8, '0.8'],
    [12, '12.0'], [1234.5678, '1234.5678'],
  ];
  for (const [x, repr] of cases) assert.is(pythonFloat(x), repr, String(x));
  const text = formatInfotext({ prompt: 'p', negativePrompt: '', steps: 20, cfgScale: 7, seed: 1, denoisingStrength: 1, variationSeed: 3, variationSeedStrength: 0.5, extra: {} });
  assert.match(text, /CFG scale: 7\.0, Seed: 1, Variation seed: 3, Variation seed strength: 0\.5, Denoising strength: 1\.0/);
  assert.is(parseInfotext(text).cfgScale, 7);
});

test.run();
