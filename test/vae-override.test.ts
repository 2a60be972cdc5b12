import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { loadImage } from '../src/image/load-image.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { makeVariant } from './helpers/variants.js';

/**
 * --vae: another VAE folder decodes (and, for img2img, encodes) in place of the model's, and the
 * image records it as A1111 does ("VAE", "VAE hash"). The stand-in "other VAE" is tiny-sd's with
 * float16 input and output (optimum --fp16's interface): same weights, different rounding.
 */
const run = (dir: string, name: string, extra: string[]) =>
  diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--steps', '2', '--seed', '3', '-o', join(dir, name), '--quiet', ...extra]);

test('the same VAE gives the same pixels and is recorded; another VAE decodes instead', async () => {
  const dir = tempDir();
  const fp16 = makeVariant('fp16-io');
  try {
    assert.is(run(dir, 'plain.png', []).status, 0);
    const same = run(dir, 'same.png', ['--vae', TINY_SD]);
    assert.is(same.status, 0, same.stderr);
    const other = run(dir, 'other.png', ['--vae', fp16.dir]);
    assert.is(other.status, 0, other.stderr);
    const pixels = async (name: string) => (await loadImage(join(dir, name))).rgb.data;
    assert.equal(await pixels('same.png'), await pixels('plain.png'));
    assert.not.equal(await pixels('other.png'), await pixels('plain.png'));
    const meta = (name: string) => {
      const m = readGenerationMetadata(readFileSync(join(dir, name)));
      if (m.kind !== 'a1111') throw new Error(`${name}: no A1111 parameters`);
      return m.parameters;
    };
    assert.is(meta('plain.png').vae, undefined);
    assert.is(meta('same.png').vae, 'tiny-sd');
    assert.match(meta('same.png').vaeHash ?? '', /^[0-9a-f]{10}$/);
    assert.is.not(meta('other.png').vaeHash, meta('same.png').vaeHash);
  } finally {
    fp16.dispose();
  }
});

test('a folder without a VAE is refused in one line, before anything is written', () => {
  const dir = tempDir();
  const r = run(dir, 'x.png', ['--vae', join(TINY_SD, 'tokenizer')]);
  assert.is(r.status, 2);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--vae .*vae_decoder/);
  assert.equal(readdirSync(dir), []);
});

test.run();
