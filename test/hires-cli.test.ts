import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import sharp from 'sharp';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

/** diffuse txt2img --hires-*: the PNG at the hires size with A1111's Hires entries, --from's round trip, and bad values in one line. */
const cli = suite('diffuse txt2img --hires-scale / --hires-size');
let dir: string;
cli.before(() => {
  dir = tempDir();
});
cli.after(() => rmSync(dir, { recursive: true, force: true }));

const base = (out: string) => ['txt2img', 'a lighthouse', '--model', TINY_SD, '--steps', '3', '--seed', '5', '-o', out, '--quiet'];
const parameters = (path: string) => {
  const meta = readGenerationMetadata(readFileSync(path));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  return meta;
};

cli('--hires-scale 2 writes a 64x64 PNG recording the first pass size and A1111’s Hires entries', async () => {
  const out = join(dir, 'scale.png');
  const r = diffuse([...base(out), '--hires-scale', '2']);
  assert.is(r.status, 0, r.stderr);
  const { width, height } = await sharp(out).metadata();
  assert.equal([width, height], [64, 64]);
  const meta = parameters(out);
  assert.match(meta.infotext, /Size: 32x32, /);
  assert.match(meta.infotext, /Denoising strength: 0\.7, /);
  assert.match(meta.infotext, /Hires upscale: 2\.0, Hires upscaler: Latent, /);
  assert.not.match(meta.infotext, /Hires steps|Hires prompt|Hires sampler|Hires CFG Scale/);
});

cli('every Hires field is recorded and --from paints the same image again', async () => {
  const out = join(dir, 'full.png');
  const r = diffuse([
    ...base(out), '--sampler', 'Euler a', '--hires-size', '64x48', '--hires-upscaler', 'lanczos', '--hires-steps', '2', '--hires-strength', '0.55',
    '--hires-prompt', 'a lighthouse, detailed', '--hires-negative', 'blurry', '--hires-sampler', 'DPM++ 2M', '--hires-schedule', 'karras', '--hires-cfg', '4.5', '-n', 'fog',
  ]);
  assert.is(r.status, 0, r.stderr);
  const { width, height } = await sharp(out).metadata();
  assert.equal([width, height], [64, 48]);
  const meta = parameters(out);
  assert.match(
    meta.infotext,
    /Denoising strength: 0\.55, .*Hires sampler: DPM\+\+ 2M, Hires prompt: "a lighthouse, detailed", Hires negative prompt: blurry, Hires schedule type: Karras, Hires resize: 64x48, Hires steps: 2, Hires upscaler: Lanczos, Hires CFG Scale: 4\.5/,
  );
  const again = join(dir, 'again.png');
  const rerun = diffuse(['txt2img', '--from', out, '--model', TINY_SD, '-o', again, '--quiet']);
  assert.is(rerun.status, 0, rerun.stderr);
  assert.is(parameters(again).infotext, meta.infotext);
  assert.equal(await sharp(again).raw().toBuffer(), await sharp(out).raw().toBuffer());
});

cli('other upscalers paint other pictures than latent (bilinear)', async () => {
  const pixels = [await sharp(join(dir, 'scale.png')).raw().toBuffer()];
  for (const upscaler of ['latent-nearest-exact', 'nearest']) {
    const out = join(dir, `${upscaler}.png`);
    const r = diffuse([...base(out), '--hires-scale', '2', '--hires-upscaler', upscaler]);
    assert.is(r.status, 0, r.stderr);
    pixels.push(await sharp(out).raw().toBuffer());
  }
  for (let i = 1; i < pixels.length; i++) for (let j = 0; j < i; j++) assert.not.equal(pixels[i], pixels[j], `runs ${i} and ${j}`);
});

cli('an ESRGAN-family .onnx as the hires upscaler (the upscale module, tiled as A1111): recorded by its name, another picture than Lanczos', async () => {
  const out = join(dir, 'esrgan.png');
  const lanczos = join(dir, 'lanczos.png');
  const model = join(FIXTURES, 'upscale', 'rrdb-x2.onnx');
  const r = diffuse([...base(out), '--hires-scale', '2', '--hires-upscaler', model]);
  assert.is(r.status, 0, r.stderr);
  assert.match(parameters(out).infotext, /Hires upscale: 2\.0, Hires upscaler: rrdb-x2, /);
  assert.is(diffuse([...base(lanczos), '--hires-scale', '2', '--hires-upscaler', 'lanczos']).status, 0);
  assert.not.equal(await sharp(out).raw().toBuffer(), await sharp(lanczos).raw().toBuffer());
  const missing = diffuse([...base(join(dir, 'missing.png')), '--hires-scale', '2', '--hires-upscaler', 'no-such-upscaler']);
  assert.is(missing.status, 2);
  assert.match(missing.stderr, /--hires-upscaler no-such-upscaler: not an upscaler of the registry/);
});

cli('bad hires values exit 2 in one line and write nothing', () => {
  const cases: [string[], RegExp][] = [
    [['--hires-scale', '1'], /--hires-scale must be a number above 1/],
    [['--hires-scale', 'two'], /--hires-scale must be a number above 1/],
    [['--hires-scale', 'Infinity'], /--hires-scale must be a number above 1/],
    [['--hires-size', '60x64'], /--hires-size width must be a multiple of 8/],
    [['--hires-size', '64'], /--hires-size must be WxH/],
    [['--hires-size', '9000x64'], /--hires-size width must be a whole number from 8 to 8192/],
    [['--hires-scale', '2', '--hires-strength', '0'], /--hires-strength must be a number above 0 and at most 1/],
    [['--hires-scale', '2', '--hires-strength', '1.5'], /--hires-strength must be a number above 0 and at most 1/],
    [['--hires-steps', '4'], /--hires-steps shapes the hires fix, which --hires-scale or --hires-size turns on/],
    [['--hires-upscaler', 'lanczos'], /--hires-upscaler shapes the hires fix/],
    [['--hires-scale', '2', '--hires-size', '64x64'], /pass one of them/],
    [['--hires-scale', '2', '--hires-upscaler', 'bilinear'], /--hires-upscaler bilinear: not an upscaler of the registry/],
    [['--hires-scale', '2', '--hires-sampler', 'nope'], /--hires-sampler: unknown sampler 'nope'/],
    [['--hires-scale', '16', '-W', '1024'], /above the 8192-pixel limit/],
  ];
  for (const [flags, message] of cases) {
    const out = join(dir, 'bad.png');
    const r = diffuse([...base(out), ...flags]);
    assert.is(r.status, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, flags.join(' '));
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.not.ok(existsSync(out), flags.join(' '));
  }
  const img2img = diffuse(['img2img', 'x', '-i', join(dir, 'scale.png'), '--model', TINY_SD, '--hires-scale', '2', '-o', join(dir, 'bad.png')]);
  assert.is(img2img.status, 2);
  assert.match(img2img.stderr, /--hires-scale/);
});

cli.run();
