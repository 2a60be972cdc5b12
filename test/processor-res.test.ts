import { createHash } from 'node:crypto';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cannyControlMap } from '../src/image/preprocess/canny.js';
import { atProcessorResolution, processorResolutionSize } from '../src/image/preprocess/processor-resolution.js';
import { lineartStandard } from '../src/image/preprocess/lineart-standard.js';
import { scribbleXdog } from '../src/image/preprocess/scribble.js';
import { threshold } from '../src/image/preprocess/threshold.js';
import type { Raster } from '../src/image/raster.js';
import { checkDetectorPictureSize } from '../src/pipeline/detector-control.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { seededPicture } from './helpers/seeded-picture.js';

/**
 * Preprocessor Resolution: sd-webui-controlnet's canny, scribble_xdog, threshold and lineart_standard at res=512 (tools/make_processor_res_refs.py,
 * OpenCV 4.11) on seeded pictures whose shorter side is 530 (INTER_AREA down to 580x512) and 100 (INTER_CUBIC up to
 * 768x512), pixel for pixel. The upscaled maps are OpenCV's own code's; cases.json counts the pixels where the
 * default dispatch (IPP's cubic) differs.
 */
const DIR = join(FIXTURES, 'processor-res');

interface Case {
  width: number;
  height: number;
  seed: number;
  module: 'canny' | 'scribble_xdog' | 'threshold' | 'lineart_standard';
  res: number;
  /** The map as a PNG (binary maps only), or null. */
  output: string | null;
  sha256: string;
  channels: number;
  outWidth: number;
  outHeight: number;
  white_pixels: number;
}

const { cases } = readJson<{ cases: Case[] }>(join(DIR, 'cases.json'));

test('sizes: k = res / shorter side, each side np.round(side · k), halves to even', () => {
  assert.equal(processorResolutionSize(600, 530, 512), { width: 580, height: 512, k: 512 / 530 });
  assert.equal(processorResolutionSize(150, 100, 512), { width: 768, height: 512, k: 5.12 });
  // 7 · 1.5 = 10.5 -> 10 (4 · 1.5 = 6); 13 · 0.5 = 6.5 -> 6 (12 · 0.5 = 6).
  assert.equal([processorResolutionSize(7, 4, 6).width, processorResolutionSize(13, 12, 6).width], [10, 6]);
  const picture = seededPicture(70, 64, 1, 'cells');
  assert.equal(atProcessorResolution(picture, 64).data, picture.data, 'at its shorter side the picture is as it is');
});

/** The map's samples in the reference's layout: one channel for a 2-D numpy map, else all of them. */
function layout(map: Raster, channels: number): Uint8Array {
  return channels === map.channels ? map.data : map.data.filter((_, i) => i % map.channels === 0);
}

for (const c of cases) {
  test(`${c.module} ${c.width}x${c.height}: equals the extension's at res=${c.res}`, async () => {
    const picture = atProcessorResolution(seededPicture(c.width, c.height, c.seed, 'cells'), c.res);
    const map = { canny: () => cannyControlMap(picture, 100, 200), scribble_xdog: () => scribbleXdog(picture, 32), threshold: () => threshold(picture, 127), lineart_standard: () => lineartStandard(picture) }[c.module]();
    assert.equal([map.width, map.height], [c.outWidth, c.outHeight]);
    const got = layout(map, c.channels);
    let nonzero = 0;
    for (let p = 0; p < c.outWidth * c.outHeight; p++) if (got[p * c.channels]) nonzero++;
    assert.is(nonzero, c.white_pixels);
    if (c.output) {
      // The PNG too, where one is kept (the CLI test passes it as type=none): pixel for pixel, with a count.
      const { data, info } = await sharp(join(DIR, c.output)).raw().toBuffer({ resolveWithObject: true });
      let differing = 0;
      for (let p = 0; p < c.outWidth * c.outHeight; p++) if (got[p * c.channels] !== data[p * info.channels]) differing++;
      assert.is(differing, 0, `${differing} pixels differ`);
    }
    assert.is(createHash('sha256').update(got).digest('hex'), c.sha256);
  });
}

test("a network's size limit applies to the picture at res=, checked before it is scaled", () => {
  const large = { width: 2112, height: 2048 };
  assert.throws(() => checkDetectorPictureSize(large, 'img', 'softedge'), /on the picture as it is, and 2112x2048 \(padded 2112x2048\).*scale the picture down first/);
  checkDetectorPictureSize(large, 'img', 'softedge', 512);
  assert.throws(() => checkDetectorPictureSize({ width: 64, height: 40 }, 'img', 'lineart', 2048), /^img: type=lineart runs its network on the picture scaled to res=2048, 3277x2048 \(padded 3328x2048\) is more than 4 megapixels \(2048x2048\); lower res=$/);
});

test.run();
