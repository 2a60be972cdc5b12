import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

const INIT = join(FIXTURES, 'pipeline/input.init-image.32x32.png');
const MASK = join(FIXTURES, 'pipeline/input.mask.32x32.png');
const base = ['--model', TINY_SD, '--steps', '3', '--quiet', '--seed', '21'];

async function pixels(path: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

test('img2img writes the picture with its denoising strength', () => {
  const out = tempDir();
  const r = diffuse(['img2img', 'a red house', '-i', INIT, '--strength', '0.5', ...base, '-o', join(out, 'a.png')]);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(join(out, 'a.png')));
  assert.ok(meta.kind === 'a1111' && meta.parameters.denoisingStrength === 0.5);
  if (meta.kind === 'a1111') assert.match(meta.parameters.extra['Init image hash'] ?? '', /^[0-9a-f]{10}$/);
});

test('inpaint keeps every pixel where the mask is black', async () => {
  const out = tempDir();
  const file = join(out, 'in.png');
  const r = diffuse(['inpaint', 'a red house', '-i', INIT, '--mask', MASK, '--mask-blur', '0', ...base, '-o', file]);
  assert.is(r.status, 0, r.stderr);
  const [src, res, mask] = await Promise.all([pixels(INIT), pixels(file), pixels(MASK)]);
  let kept = 0;
  let repainted = 0;
  for (let p = 0; p < src.width * src.height; p++) {
    // Grey mask pixels blend in proportion (A1111's overlay); only black ones are kept as they are.
    const black = mask.data[p * 3]! === 0;
    for (let c = 0; c < 3; c++) {
      if (black) {
        assert.is(res.data[p * 3 + c], src.data[p * 3 + c], `kept pixel ${p} channel ${c}`);
        kept++;
      } else if (res.data[p * 3 + c] !== src.data[p * 3 + c]) repainted++;
    }
  }
  assert.ok(kept > 0 && repainted > 0, `kept ${kept}, repainted ${repainted}`);
});

test('--inpaint-area masked paints a crop and pastes it back into the whole picture', async () => {
  const out = tempDir();
  const big = join(out, 'big.png');
  const bigMask = join(out, 'big-mask.png');
  await sharp(INIT).resize(64, 64).toFile(big);
  await sharp(MASK).resize(64, 64, { kernel: 'nearest' }).toFile(bigMask);
  const file = join(out, 'masked.png');
  const r = diffuse(['inpaint', 'a red house', '-i', big, '--mask', bigMask, '--mask-blur', '0', '--inpaint-area', 'masked', '--masked-padding', '4', ...base, '-o', file]);
  assert.is(r.status, 0, r.stderr);
  const [src, res, mask] = await Promise.all([pixels(big), pixels(file), pixels(bigMask)]);
  assert.equal([res.width, res.height], [64, 64]);
  let repainted = 0;
  for (let p = 0; p < 64 * 64; p++) {
    for (let c = 0; c < 3; c++) {
      if (mask.data[p * 3]! === 0) assert.is(res.data[p * 3 + c], src.data[p * 3 + c], `kept pixel ${p}`);
      else if (res.data[p * 3 + c] !== src.data[p * 3 + c]) repainted++;
    }
  }
  assert.ok(repainted > 0);
  const meta = readGenerationMetadata(readFileSync(file));
  assert.ok(meta.kind === 'a1111' && meta.parameters.extra['Inpaint area'] === 'Only masked' && meta.parameters.width === 32, 'painted at the native size');
});

test('--masked-content changes where the masked area starts from', async () => {
  const out = tempDir();
  const run = async (content: string) => {
    const file = join(out, `${content}.png`);
    const r = diffuse(['inpaint', 'a red house', '-i', INIT, '--mask', MASK, '--strength', '0.6', '--masked-content', content, ...base, '-o', file]);
    assert.is(r.status, 0, r.stderr);
    return (await pixels(file)).data;
  };
  const original = await run('original');
  for (const content of ['fill', 'latent-noise', 'latent-nothing']) {
    assert.not.ok(original.equals(await run(content)), `${content} paints other pixels than original`);
  }
});

test('outpaint grows the canvas and keeps the original at its offset', async () => {
  const out = tempDir();
  const file = join(out, 'out.png');
  const r = diffuse(['outpaint', 'more landscape', '-i', INIT, '--extend', 'left=16,top=8', '--overlap', '8', ...base, '-o', file]);
  assert.is(r.status, 0, r.stderr);
  const [src, res] = await Promise.all([pixels(INIT), pixels(file)]);
  assert.equal([res.width, res.height], [32 + 16, 32 + 8]);
  // Past twice the overlap from the new edges (x >= 16, y >= 16 of the original) nothing changes.
  let compared = 0;
  for (let y = 16; y < 32; y++) {
    for (let x = 16; x < 32; x++) {
      for (let c = 0; c < 3; c++) {
        assert.is(res.data[((y + 8) * res.width + x + 16) * 3 + c], src.data[(y * 32 + x) * 3 + c], `pixel (${x}, ${y})`);
        compared++;
      }
    }
  }
  assert.is(compared, 16 * 16 * 3);
  let changed = 0;
  for (let i = 0; i < 16 * 3; i++) if (res.data[i] !== res.data[i + 3]) changed++;
  assert.ok(changed > 0, 'the new area is painted, not a flat fill');
});

test('bad image input: one line, exit 2, nothing written', () => {
  const out = tempDir();
  const black = join(out, 'black.png');
  writeFileSync(join(out, 'junk.png'), 'not an image');
  const o = ['-o', join(out, 'x.png')];
  const cases: [string[], RegExp][] = [
    [['img2img', 'x', ...base, ...o], /--init-image/],
    [['img2img', 'x', '-i', join(out, 'missing.png'), ...base, ...o], /no such file/],
    [['img2img', 'x', '-i', join(out, 'junk.png'), ...base, ...o], /cannot read/],
    [['img2img', 'x', '-i', INIT, '--strength', '1.5', ...base, ...o], /--strength/],
    [['inpaint', 'x', '-i', INIT, '--mask', join(FIXTURES, 'pipeline/input.mask.48x32.png'), ...base, ...o], /aspect/],
    [['outpaint', 'x', '-i', INIT, '--extend', '12', ...base, ...o], /multiple of 8/],
    [['outpaint', 'x', '-i', INIT, '--extend', 'sideways=8', ...base, ...o], /--extend/],
  ];
  for (const [args, pattern] of cases) {
    const r = diffuse(args);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  return sharp({ create: { width: 32, height: 32, channels: 3, background: '#000' } })
    .png()
    .toFile(black)
    .then(() => {
      const r = diffuse(['inpaint', 'x', '-i', INIT, '--mask', black, ...base, ...o]);
      assert.is(r.status, 2);
      assert.match(r.stderr, /nothing to do/);
      assert.equal(listFiles(out), ['black.png', 'junk.png']);
    });
});

test.run();
