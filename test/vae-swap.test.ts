import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureConvertedVae } from '../src/graphs/vae-convert.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { GenerationResult } from '../src/pipeline/types.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD, diffuse } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';
import { VAE_FIXTURES, vaeFixtures, writeVaeFile } from './helpers/vae-files.js';

/**
 * Another VAE from a file in the pipeline: tiny-sd's PNDM case (final latents = diffusers', checked
 * by pipeline.test.ts) decoded by a VAE file converted on the fly gives the pixels diffusers
 * decodes from the same latents with AutoencoderKL.from_single_file of that file (the model's
 * scaling factor kept), and with TAESD (AutoencoderTiny: scaling factor 1, latents as they are).
 * Images: at most one level off on at most 1% of samples (float32 sums in another order).
 */
const fx = vaeFixtures();
const PIPELINE = join(FIXTURES, 'pipeline');
const pndm = readJson<{ txt2img: Array<ReferenceCase & { final_latents: { file: string } }> }>(join(PIPELINE, 'cases.json')).txt2img.find((c) => c.name === 'pndm')!;

function sameImage(result: GenerationResult, reference: string): void {
  const expected = readF32(join(VAE_FIXTURES, reference));
  const data = result.images[0]!.image.data;
  let worst = 0;
  let off = 0;
  data.forEach((v, j) => {
    const d = Math.abs(v - Math.round(expected[j]! * 255));
    worst = Math.max(worst, d);
    if (d > 0) off++;
  });
  assert.ok(worst <= 1 && off <= data.length / 100, `image off by ${worst} levels on ${off} of ${data.length} samples`);
}

async function generateWith(vaeDir: string): Promise<GenerationResult> {
  const bundle = await loadModel(TINY_SD, { device: 'cpu', vae: vaeDir });
  try {
    return await generate({ ...bundle, schedule: discreteSchedule(pndm.scheduler.config) }, referenceRequest(pndm));
  } finally {
    await bundle.release();
  }
}

const LIB = suite('another VAE from a file = diffusers decoding the same latents with it');
const temp = scratch(LIB);

LIB('an A1111 VAE file: pixels, and A1111`s "VAE" (file name) and "VAE hash" (SHA-256, 10 digits)', async () => {
  const work = temp();
  const file = writeVaeFile(work, fx.kl.ldm.recipe, 'vae-ft-tiny.safetensors');
  const result = await generateWith(await ensureConvertedVae(file, join(work, 'cache')));
  const latents = compare(result.latents, readF32(join(PIPELINE, pndm.final_latents.file)));
  assert.ok(latents.relToMax < 1e-5, `final latents off by ${latents.relToMax}`);
  sameImage(result, fx.kl.pipeline.image.file);
  assert.equal(result.images[0]!.metadata.vae, { name: 'vae-ft-tiny.safetensors', hash: fx.kl.ldm.sha256.slice(0, 10) });
  assert.is(result.images[0]!.metadata.tinyVae, undefined);
});

LIB('TAESD: pixels of AutoencoderTiny on the UNet`s latents, recorded as "VAE Decoder: TAESD"', async () => {
  const work = temp();
  const decoder = writeVaeFile(work, fx.taesd_mini.original.decoder, 'taesd_decoder.safetensors');
  writeVaeFile(work, fx.taesd_mini.original.encoder, 'taesd_encoder.safetensors');
  const result = await generateWith(await ensureConvertedVae(decoder, join(work, 'cache')));
  sameImage(result, fx.taesd_mini.pipeline.image.file);
  assert.is(result.images[0]!.metadata.vae, undefined);
  assert.equal(result.images[0]!.metadata.tinyVae, { decode: true, encode: false });
});

const CLI = suite('--vae FILE|taesd on the command line');
const cliTemp = scratch(CLI);
const run = (dir: string, name: string, extra: string[], command = 'txt2img') =>
  diffuse([command, 'a fox', '--model', TINY_SD, '--steps', '2', '--seed', '3', '-o', join(dir, name), '--quiet', ...extra]);
const infotext = (path: string): Record<string, string> => {
  const m = readGenerationMetadata(readFileSync(path));
  if (m.kind !== 'a1111') throw new Error(`${path}: no A1111 parameters`);
  return { ...m.parameters.extra, VAE: m.parameters.vae ?? '', 'VAE hash': m.parameters.vaeHash ?? '' };
};

CLI('a VAE file converts once and is recorded; TAESD decodes and encodes (img2img) and says so', () => {
  const work = cliTemp();
  const file = writeVaeFile(work, fx.kl.ldm.recipe, 'vae-ft-tiny.safetensors');
  const first = run(work, 'a.png', ['--vae', file]);
  assert.is(first.status, 0, first.stderr);
  assert.equal([infotext(join(work, 'a.png')).VAE, infotext(join(work, 'a.png'))['VAE hash']], ['vae-ft-tiny.safetensors', fx.kl.ldm.sha256.slice(0, 10)]);
  const decoder = writeVaeFile(join(work, 'tiny'), fx.taesd_mini.original.decoder, 'taesd_decoder.safetensors');
  writeVaeFile(join(work, 'tiny'), fx.taesd_mini.original.encoder, 'taesd_encoder.safetensors');
  assert.is(run(work, 'b.png', ['--vae', decoder]).status, 0);
  assert.equal([infotext(join(work, 'b.png'))['VAE Decoder'], infotext(join(work, 'b.png')).VAE], ['TAESD', '']);
  const again = diffuse(['txt2img', '--from', join(work, 'b.png'), '--model', TINY_SD, '--steps', '1', '-o', join(work, 'again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, /note: the image was decoded with TAESD; pass --vae taesd/);
  const img2img = run(work, 'c.png', ['--vae', join(work, 'tiny'), '-i', join(work, 'b.png'), '--strength', '0.5'], 'img2img');
  assert.is(img2img.status, 0, img2img.stderr);
  assert.equal([infotext(join(work, 'c.png'))['VAE Encoder'], infotext(join(work, 'c.png'))['VAE Decoder']], ['TAESD', 'TAESD']);
});

CLI('refused in one line before anything is written: tiling with TAESD, a VAE of another size, a decoder without encoder for img2img, no such VAE', () => {
  const work = cliTemp();
  const tiny = writeVaeFile(join(work, 'tiny'), fx.taesd_mini.original.decoder, 'taesd_decoder.safetensors');
  const big = writeVaeFile(join(work, 'big'), fx.taesd.original.decoder, 'taesd_decoder.safetensors');
  const out = join(work, 'out');
  const cases: Array<[string[], RegExp, string?]> = [
    [['--vae', tiny, '--vae-tiling'], /--vae-tiling does not apply to TAESD/],
    [['--vae', big], /makes 8 pixels per latent but this model's VAE 2/],
    [['--vae', tiny, '-i', join(FIXTURES, 'pipeline', 'txt2img.pndm.0.png')], /has no encoder, which img2img/, 'img2img'],
    [['--vae', join(work, 'nothing.safetensors')], /no such file or folder, nor a VAE of the registry \(taesd, taesdxl\)/],
    [['--vae', 'taesdxl'], /--vae taesdxl decodes SDXL latents, not this model's; use --vae taesd/],
  ];
  for (const [extra, message, command] of cases) {
    const r = run(out, 'x.png', extra, command);
    assert.is(r.status, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.not.ok(existsSync(out) && readdirSync(out).length > 0, 'nothing written');
  }
});

LIB.run();
CLI.run();
