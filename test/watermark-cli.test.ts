import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../src/image/encode-png.js';
import { loadImage } from '../src/image/load-image.js';
import { pngTextRecord, readPngText } from '../src/image/png-text.js';
import { diffuse, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

// The same references as test/watermark.test.ts (tools/make_watermark_refs.py), through the command line.
const DIR = join(FIXTURES, 'watermark');
const refs = JSON.parse(readFileSync(join(DIR, 'refs.json'), 'utf8')) as {
  cases: { name: string; text: string | null; order: string; bits: string; input: string; output: string; decodedOutput: string }[];
};
const sdxl = refs.cases.find((c) => c.name === 'sdxl-256x256')!;
const text = refs.cases.find((c) => c.text !== null)!;
const diffusers = refs.cases.find((c) => c.order === 'rgb')!;

const pixelsOf = async (path: string) => {
  const { rgb, alpha } = await loadImage(readFileSync(path), { alpha: 'drop' });
  return { rgb: rgb.data, alpha: alpha?.data };
};

test('embed writes the library’s pixels and keeps the PNG’s text chunks; detect finds the mark (exit 0)', async () => {
  const out = tempDir();
  const input = join(out, 'with-parameters.png');
  const { rgb } = await loadImage(join(DIR, sdxl.input));
  writeFileSync(input, await encodePng(rgb, [{ keyword: 'parameters', text: 'a lighthouse\nSteps: 20, Seed: 1' }, { keyword: 'workflow', text: '{"nodes":[]}' }]));
  const marked = join(out, 'marked.png');
  const r = diffuse(['watermark', 'embed', input, '-o', marked]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, 'the SDXL watermark (48 bits, channel order bgr)');
  assert.ok(Buffer.from((await pixelsOf(marked)).rgb).equals(Buffer.from((await pixelsOf(join(DIR, sdxl.output))).rgb)), 'pixels equal the library output');
  assert.equal(pngTextRecord(readPngText(readFileSync(marked))), { parameters: 'a lighthouse\nSteps: 20, Seed: 1', workflow: '{"nodes":[]}' });
  const d = diffuse(['watermark', 'detect', marked]);
  assert.is(d.status, 0, d.stderr);
  assert.match(d.stdout, /^watermark found: \d+ of 48 bits agree with the SDXL watermark \(channel order bgr;/);
  assert.equal(listFiles(out), ['marked.png', 'with-parameters.png']);
});

test('detect: a diffusers-order mark is found by trying both orders; an unmarked picture exits 1', () => {
  const found = diffuse(['watermark', 'detect', join(DIR, diffusers.output), '--json']);
  assert.is(found.status, 0, found.stderr);
  const record = JSON.parse(found.stdout) as { match: boolean; channelOrder: string; decoded: string; totalBits: number };
  assert.equal([record.match, record.channelOrder, record.decoded, record.totalBits], [true, 'rgb', diffusers.decodedOutput, 48]);
  const onlyBgr = diffuse(['watermark', 'detect', join(DIR, diffusers.output), '--channel-order', 'bgr']);
  assert.is(onlyBgr.status, 1, 'read the other way the bits do not match');
  const none = diffuse(['watermark', 'detect', join(DIR, sdxl.input)]);
  assert.is(none.status, 1);
  assert.match(none.stdout, /^no watermark: \d+ of 48 bits agree with the SDXL watermark/);
  assert.is(none.stderr, '');
});

test('text payloads: embed --text, detect --expect, and --bits N alone reads the raw bits', async () => {
  const out = tempDir();
  const marked = join(out, 'v1.png');
  assert.is(diffuse(['watermark', 'embed', join(DIR, text.input), '-o', marked, '--text', text.text!]).status, 0);
  assert.ok(Buffer.from((await pixelsOf(marked)).rgb).equals(Buffer.from((await pixelsOf(join(DIR, text.output))).rgb)));
  const d = diffuse(['watermark', 'detect', marked, '--expect', text.text!]);
  assert.is(d.status, 0, d.stdout + d.stderr);
  assert.match(d.stdout, `of 136 bits agree with "${text.text}"`);
  const read = diffuse(['watermark', 'detect', marked, '--bits', '136', '--json']);
  assert.is(read.status, 0, read.stderr);
  assert.is((JSON.parse(read.stdout) as { bits: string }).bits, text.decodedOutput);
  assert.is(diffuse(['watermark', 'detect', marked, '--expect', 'Hello, SDXL world']).status, 1, 'another text of the same length');
});

test('embed keeps alpha, refuses to overwrite unless asked, and marks with --bits in either order', async () => {
  const out = tempDir();
  const { rgb } = await loadImage(join(DIR, sdxl.input));
  const withAlpha = { width: rgb.width, height: rgb.height, channels: 4 as const, data: new Uint8Array(rgb.width * rgb.height * 4) };
  for (let i = 0; i < rgb.width * rgb.height; i++) {
    withAlpha.data.set(rgb.data.subarray(3 * i, 3 * i + 3), 4 * i);
    withAlpha.data[4 * i + 3] = 255 - (i % 200);
  }
  const input = join(out, 'alpha.png');
  writeFileSync(input, await encodePng(withAlpha));
  const marked = join(out, 'marked.png');
  assert.is(diffuse(['watermark', 'embed', input, '-o', marked, '--bits', '1011', '--channel-order', 'rgb']).status, 0);
  const result = await pixelsOf(marked);
  assert.ok(result.alpha && result.alpha.every((a, i) => a === 255 - (i % 200)), 'alpha unchanged');
  const again = diffuse(['watermark', 'embed', input, '-o', marked]);
  assert.is(again.status, 1);
  assert.match(again.stderr, 'already exists');
  assert.is(diffuse(['watermark', 'embed', input, '-o', marked, '--overwrite']).status, 0);
  assert.equal(listFiles(out), ['alpha.png', 'marked.png'], 'no temporary file left');
  const read = JSON.parse(diffuse(['watermark', 'detect', marked, '--bits', '4', '--channel-order', 'rgb', '--json']).stdout) as { bits: string };
  assert.ok(/^[01]{4}$/.test(read.bits));
});

test('usage errors exit 2 with one line; a picture under 256x256 pixels is refused', async () => {
  const out = tempDir();
  const small = join(out, 'small.png');
  writeFileSync(small, await encodePng({ width: 200, height: 200, channels: 3, data: new Uint8Array(200 * 200 * 3) }));
  const input = join(DIR, sdxl.input);
  const cases: [string[], string][] = [
    [['watermark', 'embed', input, '-o', join(out, 'x.jpg')], 'only .png output'],
    [['watermark', 'embed', input, '-o', join(out, 'x.png'), '--text', 'a', '--bits', '01'], 'not both'],
    [['watermark', 'embed', input, '-o', join(out, 'x.png'), '--bits', '01x'], '0s and 1s'],
    [['watermark', 'embed', input, '-o', join(out, 'x.png'), '--channel-order', 'grb'], '--channel-order'],
    [['watermark', 'embed', small, '-o', join(out, 'x.png')], '200x200'],
    [['watermark', 'detect', join(out, 'missing.png')], 'no such file'],
    [['watermark', 'detect', input, '--expect', 'abc', '--bits', '8'], 'does not match'],
    [['watermark', 'detect', input, '--bits', '0'], '--bits'],
    [['watermark', 'detect', small], '200x200'],
  ];
  for (const [args, message] of cases) {
    const r = diffuse(args);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(listFiles(out), ['small.png'], 'nothing written');
});

test.run();
