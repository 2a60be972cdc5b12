import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pixelPerfectResolution } from '../src/image/preprocess/processor-resolution.js';
import type { ResizeMode } from '../src/image/resize-modes.js';
import { parseControlSpecs } from '../src/settings/control-spec.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

/**
 * res=pixel-perfect: sd-webui-controlnet 1.1.455's pixel_perfect_resolution on the painted size aligned to the latent
 * grid (tools/make_pixel_perfect_refs.py, numpy's round), on pictures wider, taller and smaller than the painted size,
 * a painted size off the grid and exact .5 ties, in each resize mode.
 */
interface Case {
  picture: [number, number];
  painted: [number, number];
  resize: ResizeMode;
  estimation: number;
  res: number;
}
const { cases } = readJson<{ cases: Case[] }>(join(FIXTURES, 'pixel-perfect', 'cases.json'));

test('the resolution equals the extension\'s on every case, ties at .5 included', () => {
  assert.ok(cases.length >= 36 && cases.filter((c) => c.estimation % 1 === 0.5).length >= 6, 'the reference has its ties');
  for (const c of cases) {
    const got = pixelPerfectResolution({ width: c.picture[0], height: c.picture[1] }, { width: c.painted[0], height: c.painted[1] }, c.resize);
    assert.is(got, c.res, JSON.stringify(c));
  }
});

test('--control res=pixel-perfect is read as such; other words are refused naming it', () => {
  const [spec] = parseControlSpecs('type=canny,image=a.png,model=m,res=pixel-perfect', '--control');
  assert.is(spec!.res, 'pixel-perfect');
  assert.throws(() => parseControlSpecs('type=canny,image=a.png,model=m,res=pixel', '--control'), /res must be a whole number from 64 to 2048, or pixel-perfect \(got 'pixel'\)/);
  assert.throws(() => parseControlSpecs('type=none,image=a.png,model=m,res=pixel-perfect', '--control'), /type=none takes none/);
});

test.run();
