import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyOverlay, type Box } from '../src/image/composite.js';
import { encodePng } from '../src/image/encode-png.js';
import { loadImage } from '../src/image/load-image.js';
import { featherMask, luminance, maskBytes } from '../src/image/mask.js';
import { paste, type Raster } from '../src/image/raster.js';
import { fitToSize } from '../src/image/resize-modes.js';
import { inpaintPass, maskedRegion } from '../src/pipeline/tasks/inpaint.js';
import type { InpaintMask, MaskedContent } from '../src/pipeline/types.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { seededPicture } from './helpers/seeded-picture.js';
import { tinyRequest } from './helpers/tiny-model.js';

/**
 * Inpaint's finished picture = A1111 1.10's (tools/make_overlay_refs.py, checked there against diffusers 0.32's
 * VaeImageProcessor.apply_overlay), byte for byte, through the plan's `finish` the pipeline calls: the mask blurred by
 * cv2.GaussianBlur with A1111's kernel, doubled for the whole picture, the picture kept through PIL's premultiplied
 * overlay and alpha_composite, an "only masked" crop brought back by crop-and-resize.
 */
const DIR = join(FIXTURES, 'overlay');
interface Case {
  name: string;
  mask: string;
  blur: number;
  area: 'whole' | 'masked';
  padding?: number;
  region?: Box;
  justResizeMaxOff?: number;
  painted: { width: number; height: number; seed: number };
  expected: string;
}
const doc = readJson<{ original: { width: number; height: number; seed: number }; cases: Case[] }>(join(DIR, 'cases.json'));
const original = seededPicture(doc.original.width, doc.original.height, doc.original.seed, 'photo');

const rgb = async (file: string): Promise<Raster> => (await loadImage(join(DIR, file))).rgb;
const painted = (c: Case): Raster => seededPicture(c.painted.width, c.painted.height, c.painted.seed, 'photo');

async function maskOf(c: Case, content?: MaskedContent): Promise<InpaintMask> {
  const values = luminance(await rgb(c.mask));
  return { values, blur: c.blur, overlay: 'mask', area: c.area, ...(c.padding === undefined ? {} : { padding: c.padding }), ...(content ? { content } : {}) };
}

async function finished(c: Case, content?: MaskedContent): Promise<{ image: Raster; passImage: Raster }> {
  const mask = await maskOf(c, content);
  const request = tinyRequest({ width: c.painted.width, height: c.painted.height, init: { image: original, strength: 1, latents: 'sample' }, mask });
  const plan = await inpaintPass(request, request.init!, mask);
  assert.ok(plan.finish, `${c.name}: the plan finishes the painted picture`);
  return { image: plan.finish(painted(c)), passImage: plan.pass.init!.image };
}

/** How many samples differ, and by how much at most. */
function compare(a: Uint8Array, b: Uint8Array): { differ: number; maxOff: number } {
  let differ = 0;
  let maxOff = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) differ++;
    maxOff = Math.max(maxOff, Math.abs(a[i]! - b[i]!));
  }
  return { differ, maxOff };
}

test('the finished picture equals A1111 1.10 apply_overlay, byte for byte, in every case', async () => {
  assert.ok(doc.cases.some((c) => c.area === 'whole') && doc.cases.some((c) => c.area === 'masked'));
  for (const c of doc.cases) {
    const { image } = await finished(c);
    const expected = await rgb(c.expected);
    assert.equal([image.width, image.height, image.channels], [expected.width, expected.height, 3], c.name);
    assert.equal(compare(image.data, expected.data), { differ: 0, maxOff: 0 }, c.name);
  }
});

test('"only masked": the region is A1111 1.10 crop region', async () => {
  for (const c of doc.cases.filter((k) => k.area === 'masked')) {
    assert.equal(maskedRegion(original, await maskOf(c), c.painted), c.region, c.name);
  }
});

test('the finish before: the crop stretched to the region ("just resize") is off where the aspects differ', async () => {
  const told = doc.cases.filter((c) => (c.justResizeMaxOff ?? 0) > 0);
  assert.ok(told.some((c) => c.blur === 0) && told.some((c) => c.blur > 0));
  for (const c of doc.cases.filter((k) => k.area === 'masked')) {
    const box = c.region!;
    const canvas: Raster = { ...original, data: Uint8Array.from(original.data) };
    paste(canvas, fitToSize(painted(c), box.x1 - box.x0, box.y1 - box.y0, 'just-resize'), box.x0, box.y0);
    const overlay = maskBytes(featherMask(luminance(await rgb(c.mask)), original.width, original.height, c.blur));
    const { maxOff } = compare(applyOverlay(original, canvas, overlay).data, (await rgb(c.expected)).data);
    assert.is(maxOff, c.justResizeMaxOff, c.name);
  }
});

test('the blend before (round(o·(1-a) + g·a) through the undoubled mask) is off in the whole-picture cases', async () => {
  for (const c of doc.cases.filter((k) => k.area === 'whole')) {
    const a = featherMask(luminance(await rgb(c.mask)), original.width, original.height, c.blur);
    const g = painted(c).data;
    const lerp = original.data.map((o, i) => Math.round(o * (1 - a[Math.floor(i / 3)]!) + g[i]! * a[Math.floor(i / 3)]!));
    assert.ok(compare(lerp, (await rgb(c.expected)).data).maxOff > 0, c.name);
  }
});

test('"fill": the model starts from the filled picture, the overlay keeps the picture as it was', async () => {
  const c = doc.cases.find((k) => k.area === 'whole' && k.blur > 0)!;
  const { image, passImage } = await finished(c, 'fill');
  assert.ok(compare(passImage.data, original.data).differ > 0, 'the pass starts from the filled picture');
  assert.equal(compare(image.data, (await rgb(c.expected)).data), { differ: 0, maxOff: 0 });
});

test('CLI: inpaint --inpaint-area masked writes the whole picture, the input outside the region', async () => {
  const c = doc.cases.find((k) => k.area === 'masked' && k.blur > 0)!;
  const dir = tempDir();
  const init = join(dir, 'init.png');
  const out = join(dir, 'out.png');
  writeFileSync(init, await encodePng(original));
  const r = diffuse(['inpaint', 'a red house', '-i', init, '--mask', join(DIR, c.mask), '--mask-blur', String(c.blur), '--inpaint-area', 'masked', '--masked-padding', String(c.padding), '--model', TINY_SD, '--steps', '3', '--seed', '21', '--quiet', '-o', out]);
  assert.is(r.status, 0, r.stderr);
  const result = (await loadImage(out)).rgb;
  assert.equal([result.width, result.height], [original.width, original.height]);
  const box = maskedRegion(original, await maskOf(c), { width: 32, height: 32 });
  assert.ok(box.x1 - box.x0 < original.width || box.y1 - box.y0 < original.height, 'part of the picture is outside the region');
  let outside = 0;
  let changedInside = 0;
  for (let y = 0; y < original.height; y++) {
    for (let x = 0; x < original.width; x++) {
      const inside = x >= box.x0 && x < box.x1 && y >= box.y0 && y < box.y1;
      for (let ch = 0; ch < 3; ch++) {
        const i = (y * original.width + x) * 3 + ch;
        if (!inside) {
          assert.is(result.data[i], original.data[i], `pixel (${x}, ${y}) outside the region`);
          outside++;
        } else if (result.data[i] !== original.data[i]) changedInside++;
      }
    }
  }
  assert.ok(outside > 0 && changedInside > 0, `outside ${outside}, changed inside ${changedInside}`);
});

test.run();
