import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generate } from '../src/pipeline/generate.js';
import { LATENT_RGB, latentToRgb } from '../src/pipeline/latent-rgb.js';
import { previewer } from '../src/pipeline/preview.js';
import type { Raster } from '../src/image/raster.js';
import { TINY_SD, diffuseAsync, tempDir } from './helpers/cli.js';
import { syntheticInput } from './helpers/synthetic-checkpoint.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';
import { vaeFixtures } from './helpers/vae-files.js';

/**
 * Live previews: ComfyUI's latent-to-RGB factors (its comfy/latent_formats.py, read by
 * tools/make_vae_fixtures.py) and the pixels its Latent2RGBPreviewer makes of a latent; the
 * previewer's scheduling beside the one sampling loop (never blocking it, the latest step wins);
 * and the preview file, replaced atomically while a reader keeps opening it.
 */
const fx = vaeFixtures();

const RGB = suite('latent2rgb = ComfyUI`s Latent2RGBPreviewer');

for (const format of ['sd15', 'sdxl'] as const) {
  RGB(`${format}: the factors and bias are ComfyUI's`, () => {
    assert.equal(LATENT_RGB[format].factors, fx.latent2rgb[format].factors);
    assert.equal(LATENT_RGB[format].bias ?? null, fx.latent2rgb[format].bias);
  });
  RGB(`${format}: the preview pixels of a latent (round half to even; at most 1 level where float32 sums differ)`, () => {
    const ref = fx.latent2rgb[format];
    const [, c, h, w] = ref.x0.shape as [number, number, number, number];
    const x0 = syntheticInput(fx.seeds.preview, ref.x0.index, ref.x0.shape).map((v) => v * ref.x0.times);
    const got = latentToRgb(x0, [c, h, w], LATENT_RGB[format]);
    assert.equal([got.width, got.height, got.channels], [w, h, 3]);
    let worst = 0;
    let off = 0;
    ref.pixels.flat(2).forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - got.data[i]!));
      if (v !== got.data[i]) off++;
    });
    assert.ok(worst <= 1 && off <= 1, `off by ${worst} on ${off} samples`);
  });
}

const SCHED = suite('previews beside the sampling loop');
const model = withModel(SCHED);

SCHED('every n steps; a slow preview never holds the loop up, skips what it cannot show, and always shows the latest', async () => {
  const shown: number[] = [];
  const fast = previewer({ every: 2, latentFormat: 'sd15', onImage: async (_image, step) => void shown.push(step) });
  const steps: number[] = [];
  await generate(model(), tinyRequest({ steps: 6 }), fast.listener((e) => e.kind === 'step' && steps.push(e.step)));
  await fast.finish();
  assert.equal(steps, [1, 2, 3, 4, 5, 6], 'the listener chain still hears every step');
  assert.equal(shown, [2, 4, 6]);

  const slowShown: Array<{ step: number; image: Raster }> = [];
  const slow = previewer({ every: 1, latentFormat: 'sd15', onImage: async (image, step) => {
    await sleep(400);
    slowShown.push({ step, image });
  } });
  const started = performance.now();
  await generate(model(), tinyRequest({ steps: 8 }), slow.listener());
  const loop = performance.now() - started;
  await slow.finish();
  const shownSteps = slowShown.map((s) => s.step);
  assert.ok(shownSteps.length < 8 && shownSteps.at(-1) === 8, `skipped some, showed the last: ${shownSteps.join(',')}`);
  assert.equal(shownSteps, [...shownSteps].sort((a, b) => a - b));
  assert.ok(loop < 8 * 400, `the loop did not wait for the previews (${loop.toFixed(0)} ms)`);
  assert.equal([slowShown[0]!.image.width, slowShown[0]!.image.height], [16, 16], 'one pixel per latent');
});

SCHED('a failing preview is reported once the loop is done', async () => {
  const failing = previewer({ every: 1, latentFormat: 'sd15', onImage: async () => { throw new Error('disk full'); } });
  await generate(model(), tinyRequest({ steps: 3 }), failing.listener());
  try {
    await failing.finish();
    assert.unreachable('finish() resolved');
  } catch (err) {
    assert.match((err as Error).message, /disk full/);
  }
});

const FILE = suite('--preview: one PNG, replaced atomically');

FILE('a reader opening the preview while it is rewritten always gets a whole PNG; nothing else is left beside it', async () => {
  const dir = tempDir();
  const path = join(dir, 'preview.png');
  const run = diffuseAsync(['txt2img', 'a fox', '--model', TINY_SD, '--steps', '30', '--seed', '4', '--quiet', '-o', join(dir, 'out.png'), '--preview', path, '--preview-every', '1', '--preview-method', 'latent2rgb']);
  let done = false;
  void run.then(() => (done = true));
  let reads = 0;
  const seen = new Set<string>();
  while (!done) {
    if (existsSync(path)) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch {
        continue;
      }
      const { info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
      assert.equal([info.width, info.height, info.channels], [16, 16, 3]);
      seen.add(bytes.toString('base64'));
      reads++;
    }
    await sleep(2);
  }
  const result = await run;
  assert.is(result.status, 0, result.stderr);
  assert.ok(reads > 0 && seen.size > 1, `read ${reads} times, ${seen.size} different previews`);
  assert.equal(readdirSync(dir).sort(), ['out.png', 'preview.png']);
});

FILE('refused in one line: not a .png, TAESD asked for but not installed', async () => {
  const dir = tempDir();
  for (const [extra, message] of [
    [['--preview', join(dir, 'p.jpg')], /--preview must name a \.png file/],
    [['--preview', join(dir, 'p.png'), '--preview-method', 'taesd'], /taesd is not installed; run `diffuse models pull taesd`/],
  ] as const) {
    const r = await diffuseAsync(['txt2img', 'x', '--model', TINY_SD, '--steps', '2', '--quiet', '-o', join(dir, 'x.png'), ...extra]);
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(readdirSync(dir), []);
});

RGB.run();
SCHED.run();
FILE.run();
