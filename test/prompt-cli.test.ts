import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

const base = ['--model', TINY_SD, '--steps', '3', '--seed', '4', '--quiet'];

function run(out: string, name: string, prompt: string, extra: string[] = []): { png: Buffer; params: Record<string, unknown> } {
  const file = join(out, name);
  const r = diffuse(['txt2img', prompt, ...base, ...extra, '-o', file]);
  assert.is(r.status, 0, r.stderr);
  const png = readFileSync(file);
  const meta = readGenerationMetadata(png);
  assert.is(meta.kind, 'a1111');
  return { png, params: meta.kind === 'a1111' ? { ...meta.parameters, ...meta.parameters.extra } : {} };
}

test('emphasis and prompt editing change the image; --prompt-weighting none reads them as text', () => {
  const out = tempDir();
  const plain = run(out, 'plain.png', 'a cat in the snow');
  const weighted = run(out, 'weighted.png', 'a (cat:1.6) in the snow');
  const edited = run(out, 'edited.png', 'a [dog:cat:2] in the snow');
  const literal = run(out, 'literal.png', 'a (cat:1.6) in the snow', ['--prompt-weighting', 'none']);
  assert.not.ok(plain.png.equals(weighted.png));
  assert.not.ok(plain.png.equals(edited.png));
  assert.not.ok(weighted.png.equals(literal.png));
  assert.is(literal.params['Prompt weighting'], 'none');
});

test('--clip-skip 2 uses another layer and is recorded as A1111 writes it', () => {
  const out = tempDir();
  const one = run(out, 'one.png', 'a cat');
  const two = run(out, 'two.png', 'a cat', ['--clip-skip', '2']);
  assert.not.ok(one.png.equals(two.png));
  assert.is(two.params.clipSkip, 2);
});

test('an embedding is used where its file name appears, and recorded with its hash', () => {
  const out = tempDir();
  const dir = join(out, 'embeddings');
  mkdirSync(dir);
  cpSync(join(FIXTURES, 'embeddings/tiny-emb.safetensors'), join(dir, 'tiny-emb.safetensors'));
  const without = run(out, 'without.png', 'a photo of tiny-emb');
  const withEmb = run(out, 'with.png', 'a photo of tiny-emb', ['--embeddings-dir', dir]);
  const unused = run(out, 'unused.png', 'a photo of a cat', ['--embeddings-dir', dir]);
  assert.not.ok(without.png.equals(withEmb.png));
  assert.match(String(withEmb.params['TI hashes']), /^tiny-emb: [0-9a-f]{12}$/);
  assert.is(unused.params['TI hashes'], undefined);
});

test('a hostile embedding is read only when a prompt names it, and then left out with one warning', () => {
  const out = tempDir();
  const dir = join(out, 'embeddings');
  mkdirSync(dir);
  cpSync(join(FIXTURES, 'embeddings/evil-os-system.pt'), join(dir, 'evil.pt'));
  const unnamed = diffuse(['txt2img', 'x', ...base, '--embeddings-dir', dir, '-o', join(out, 'x.png')]);
  assert.is(unnamed.status, 0, unnamed.stderr);
  assert.is(unnamed.stderr, '', 'a file no prompt names is not read');
  const named = diffuse(['txt2img', 'an evil cat', ...base, '--embeddings-dir', dir, '-n', 'evil', '-o', join(out, 'y.png')]);
  assert.is(named.status, 0, named.stderr);
  const lines = named.stderr.trim().split('\n');
  assert.is(lines.length, 1, named.stderr);
  assert.match(lines[0]!, /^warning: embedding evil\.pt: .*refusing to load.*'evil' stays plain text$/);
});

test('diffuse prompt --explain shows the schedule, chunks and weights', () => {
  const r = diffuse(['prompt', 'a [cat:dog:0.5] in (snow:1.3) BREAK night', '--model', TINY_SD, '--steps', '10']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /steps 1-6 of 10: "a cat/);
  assert.match(r.stdout, /steps 7-10 of 10: "a dog/);
  assert.match(r.stdout, /snow×1\.3/);
  assert.match(r.stdout, /chunk 2/);
});

test.run();
