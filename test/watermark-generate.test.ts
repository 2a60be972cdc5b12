import { readFileSync, writeFileSync } from 'node:fs';
import { encodePng } from '../src/image/encode-png.js';
import { createRaster, type Raster } from '../src/image/raster.js';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { readWatermark } from '../src/image/watermark/dwt-dct.js';
import { SDXL_WATERMARK_BITS } from '../src/image/watermark/payload.js';
import { generate } from '../src/pipeline/generate.js';
import { TINY_SD, diffuse, listFiles, tempDir } from './helpers/cli.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/** --watermark: every finished image carries the payload, recorded in its parameters and found by `diffuse watermark detect`. */
const s = suite('generation with an invisible watermark');
const model = withModel(s, TINY_SD, { withEncoder: true });
// A watermark needs 256x256 pixels; the tiny model's UNet is slow there, so these runs are img2img
// at strength 0 (the picture's VAE round trip, no step), which finish like any other image.
const INIT = join(tempDir(), 'init.png');

async function picture(): Promise<Raster> {
  const image = createRaster(256, 256, 3);
  image.data.forEach((_, i) => (image.data[i] = (i * 37) % 251));
  writeFileSync(INIT, await encodePng(image, []));
  return image;
}

s('generate() marks the finished image and records it', async () => {
  const init = { image: await picture(), strength: 0, latents: 'mean' as const };
  const marked = await generate(model(), tinyRequest({ width: 256, height: 256, init, vaeTiling: true, watermark: { bits: SDXL_WATERMARK_BITS, label: 'sdxl' } }));
  const image = marked.images[0]!.image;
  assert.equal(readWatermark(image, SDXL_WATERMARK_BITS.length), [...SDXL_WATERMARK_BITS]);
  assert.ok(image.data.some((v, i) => v !== init.image.data[i]), 'the VAE round trip and the mark changed the picture');
  assert.is(marked.images[0]!.metadata.watermark, 'sdxl');
});

s('the CLI records it and detect finds it (a text payload)', () => {
  const out = join(tempDir(), 'text.png');
  const r = diffuse(['img2img', 'a fox', '-i', INIT, '--strength', '0', '--model', TINY_SD, '--seed', '4', '--quiet', '--watermark', 'diffuse', '--vae-tiling', '-o', out]);
  assert.is(r.status, 0, r.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.ok(meta.kind === 'a1111' && meta.parameters.extra.Watermark === 'text=diffuse', JSON.stringify(meta));
  const found = diffuse(['watermark', 'detect', out, '--expect', 'diffuse']);
  assert.is(found.status, 0, found.stdout + found.stderr);
  assert.is(diffuse(['watermark', 'detect', out]).status, 1, 'not the SDXL message');
});

s('an image too small to carry it is refused before anything runs', () => {
  const dir = tempDir();
  const r = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--steps', '2', '--watermark', '-o', join(dir, 'x.png')]);
  assert.is(r.status, 2);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /256x256/);
  assert.equal(listFiles(dir), []);
});

s.run();
