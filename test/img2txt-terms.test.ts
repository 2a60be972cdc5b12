import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DICT_LIMIT, shippedTermLists } from '../src/pipeline/interrogate/term-lists.js';
import { ROOT, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

// The upstream bytes: clip_interrogator/data/*.txt of the PyPI wheel clip_interrogator-0.6.0-py3-none-any.whl
// (SHA-256 cd7c6bf9…abd1c), equal to pharmapsychotic/clip-interrogator's main branch (bc07ce6).
const UPSTREAM = {
  artists: ['01e4b30f6d7cfdb62f4582c5bec658e02d79bf9c19052949ce3336d6eff4d395', 5265],
  flavors: ['c99d83a7a435157339f3b60a34794c524de37159a9b72f3a2034df8245c4a2f1', 100970],
  mediums: ['91f26b9d0d7d93f8e30139a94f895ba5a97744033ec0b174539f3a88bc49cd2c', 95],
  movements: ['16d60ecb48901885e877ca9243b3c32bc84a2477c4d3f0a1cf6d66086ce47483', 200],
} as const;
const ASSETS = join(ROOT, 'assets', 'interrogate-terms');
const DIR = join(FIXTURES, 'tiny-interrogate');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const picture = join(DIR, 'refs', readJson<{ cases: { image: string }[] }>(join(DIR, 'refs', 'refs.json')).cases[0]!.image);

test("the shipped lists are clip-interrogator's files byte for byte, with its MIT licence", () => {
  for (const [name, [hash, lines]] of Object.entries(UPSTREAM)) {
    const bytes = gunzipSync(readFileSync(join(ASSETS, `${name}.txt.gz`)));
    assert.is(sha256(bytes), hash, name);
    assert.is(bytes.toString('utf8').split('\n').length - 1, lines, name);
  }
  const licence = readFileSync(join(ASSETS, 'LICENSE'), 'utf8');
  assert.ok(licence.startsWith('MIT License\n\nCopyright (c) 2022 pharmapsychotic'), licence.slice(0, 60));
  const lists = shippedTermLists();
  assert.equal(lists.map((l) => [l.name, l.sha256, l.topn, l.items.length]), Object.entries(UPSTREAM).map(([n, [h, lines]]) => [n, h, 1, Math.min(lines, DICT_LIMIT)]));
});

test('without --terms the shipped lists are ranked, as the same files in a --terms folder are; --json names them', () => {
  const args = ['img2txt', picture, '--blip', join(DIR, 'blip'), '--clip', join(DIR, 'clip'), '--json', '--no-feature-cache', '--threads', '1'];
  const shipped = diffuse(args);
  assert.is(shipped.status, 0, shipped.stderr);
  const folder = tempDir('diffuse-img2txt-shipped-');
  for (const name of Object.keys(UPSTREAM)) writeFileSync(join(folder, `${name}.txt`), gunzipSync(readFileSync(join(ASSETS, `${name}.txt.gz`))));
  const given = diffuse([...args, '--terms', folder]);
  assert.is(given.status, 0, given.stderr);
  type Out = { prompt: string; terms: { category: string; term: string }[]; termLists: { source: string; lists: { name: string; sha256: string; terms: number }[] } };
  const a = JSON.parse(shipped.stdout) as Out;
  const b = JSON.parse(given.stdout) as Out;
  assert.equal(a.terms.map((t) => t.category), Object.keys(UPSTREAM));
  assert.is(a.prompt, b.prompt);
  assert.equal(a.terms, b.terms);
  assert.match(a.termLists.source, /clip-interrogator 0\.6\.0/);
  assert.is(b.termLists.source, folder);
  assert.equal(a.termLists.lists, b.termLists.lists);
  assert.equal(a.termLists.lists.map((l) => [l.name, l.sha256]), Object.entries(UPSTREAM).map(([n, [h]]) => [n, h]));
});

test.run();
