import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';

/** -o with JPEG, WebP and AVIF: the parameters in EXIF as A1111 writes them, read back by info and --from. */
const base = ['--model', TINY_SD, '--steps', '2', '--quiet'];

test('each format carries the parameters; info prints them; --from re-runs a WebP to the same PNG', () => {
  const out = tempDir();
  const png = diffuse(['txt2img', 'a fox', ...base, '--seed', '8', '-o', join(out, 'ref.png')]);
  assert.is(png.status, 0, png.stderr);
  const pngText = diffuse(['info', join(out, 'ref.png')]).stdout;
  for (const name of ['a.jpg', 'a.webp', 'a.avif']) {
    const r = diffuse(['txt2img', 'a fox', ...base, '--seed', '8', '--quality', '90', '-o', join(out, name)]);
    assert.is(r.status, 0, r.stderr);
    const info = diffuse(['info', join(out, name)]);
    assert.is(info.status, 0, info.stderr);
    assert.is(info.stdout, pngText, name);
    const meta = readGenerationMetadata(readFileSync(join(out, name)));
    assert.ok(meta.kind === 'a1111' && meta.parameters.seed === 8, name);
  }
  const again = diffuse(['txt2img', '--from', join(out, 'a.webp'), '--model', TINY_SD, '--quiet', '-o', join(out, 'again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.ok(readFileSync(join(out, 'again.png')).equals(readFileSync(join(out, 'ref.png'))));
});

test('a name template in -o: the folder, {prompt:N}, {seed}, {index}, and the extension as the format', async () => {
  const out = tempDir();
  const r = diffuse(['txt2img', 'a lighthouse at dusk', ...base, '--seed', '3', '--batch-size', '2', '-o', join(out, 'renders/{model}/{seed}-{index}-{prompt:12}.jpg')]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(listFiles(out), ['renders/tiny-sd/3-0-a_lighthouse.jpg', 'renders/tiny-sd/4-1-a_lighthouse.jpg']);
  assert.is((await sharp(join(out, 'renders/tiny-sd/3-0-a_lighthouse.jpg')).metadata()).format, 'jpeg');
  const bad = diffuse(['txt2img', 'x', ...base, '-o', join(out, '{seeds}.png')]);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /unknown placeholder \{seeds\}/);
});

test.run();
