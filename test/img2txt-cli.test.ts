import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { rankWeight } from '../src/pipeline/interrogate/rank.js';
import { TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

// The CLI against tools/make_interrogate_fixture.py's references (see test/img2txt.test.ts).
const DIR = join(FIXTURES, 'tiny-interrogate');
interface Case { image: string; classicPrompt: string; classic: { matches: { term: string; score: number }[] }[]; captions: { caption: string }[]; fast: { terms: string[]; prompt: string } }
const refs = readJson<{ cases: Case[] }>(join(DIR, 'refs', 'refs.json'));
const [first, second] = refs.cases as [Case, Case];
const image = (c: Case) => join(DIR, 'refs', c.image);
const oneLine = (r: { stderr: string }) => r.stderr.trim().split('\n').length === 1 && !/\n\s+at /.test(r.stderr);

test('img2txt prints the prompt alone on stdout: the caption and each list\'s top terms (A1111\'s Interrogate CLIP)', () => {
  const r = diffuse(['img2txt', image(first), '--model', DIR, '--threads', '1']);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, `${first.classicPrompt}\n`);
  assert.is(r.stderr, '');
});

test('interrogate (the alias) --mode fast --json: caption, prompt and the ranked terms with their scores', () => {
  const r = diffuse(['interrogate', image(second), '--model', DIR, '--mode', 'fast', '--json', '--threads', '1']);
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { mode: string; caption: string; prompt: string; terms: { category: string; term: string; score: number }[] };
  assert.is(out.mode, 'fast');
  assert.is(out.caption, second.captions[0]!.caption);
  assert.is(out.prompt, second.fast.prompt);
  assert.equal(out.terms.map((t) => t.term), second.fast.terms);
  assert.ok(out.terms.every((t) => typeof t.score === 'number' && t.category.length > 0));
});

test("--ranks writes A1111's (term:probability) weights, and the output is a prompt txt2img takes as it is", () => {
  const r = diffuse(['img2txt', image(first), '--model', DIR, '--ranks', '--threads', '1']);
  assert.is(r.status, 0, r.stderr);
  const weights = first.classic.flatMap((k) => k.matches).map((m) => `(${m.term}:${rankWeight(m.score / 100)})`);
  assert.is(r.stdout, `${[first.captions[0]!.caption, ...weights].join(', ')}\n`);
  const out = join(tempDir('diffuse-img2txt-'), 'from-prompt.png');
  const prompt = r.stdout.trimEnd();
  const t = diffuse(['txt2img', prompt, '--model', TINY_SD, '--steps', '1', '-W', '32', '-H', '32', '--seed', '3', '-q', '-o', out]);
  assert.is(t.status, 0, t.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.is(meta.kind === 'a1111' ? meta.parameters.prompt : undefined, prompt);
});

test('bad inputs: one line, exit 2 for usage, 1 for a broken model folder, nothing written', () => {
  const scratch = tempDir('diffuse-img2txt-bad-');
  const broken = join(scratch, 'broken');
  cpSync(DIR, broken, { recursive: true });
  rmSync(join(broken, 'clip', 'onnx', 'text_model.onnx'));
  const emptyTerms = join(scratch, 'empty-terms');
  mkdirSync(emptyTerms);
  writeFileSync(join(emptyTerms, 'mediums.txt'), '\n \n');
  const noTerms = join(scratch, 'no-terms');
  mkdirSync(noTerms);
  const before = listFiles(scratch);
  const cases: [string[], number, RegExp][] = [
    [['img2txt', join(DIR, 'terms', 'artists.txt'), '--model', DIR], 2, /not a readable PNG, JPEG or WebP|is not a PNG, JPEG or WebP/],
    [['img2txt', join(scratch, 'missing.png'), '--model', DIR], 2, /missing\.png/],
    [['img2txt', image(first), '--model', join(scratch, 'nowhere')], 2, /interrogator folder not found/],
    [['img2txt', image(first), '--model', broken], 1, /has no onnx\/text_model\.onnx/],
    [['img2txt', image(first), '--model', DIR, '--terms', emptyTerms], 2, /mediums\.txt has no terms/],
    [['img2txt', image(first), '--model', DIR, '--terms', noTerms], 2, /no term lists/],
    [['img2txt', image(first), '--model', DIR, '--mode', 'best'], 2, /--mode must be one of classic, fast/],
    [['img2txt', image(first), '--model', DIR, '--min-length', '30', '--max-length', '20'], 2, /--min-length 30 is more than --max-length 20/],
    [['img2txt', image(first), '--model', DIR, '--max-length', '0'], 2, /--max-length must be a whole number/],
  ];
  for (const [args, status, message] of cases) {
    const r = diffuse(args);
    assert.is(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.ok(oneLine(r), r.stderr);
    assert.is(r.stdout, '');
  }
  assert.equal(listFiles(scratch), before);
});

test.run();
