import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../src/errors.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { parseInfotext } from '../src/image/infotext.js';
import { MAX_XYZ_TILES, parseXyz } from '../src/settings/xyz.js';
import { TINY_SD, diffuse, listFiles } from './helpers/cli.js';
import { scratch } from './helpers/scratch.js';

/** --xyz on tiny-sd: the grid is the images made alone, pasted tile for tile; labels; bad axes. */
const test = suite('xyz');
const temp = scratch(test);

const RUN = ['-m', TINY_SD, '--seed', '7', '-W', '32', '-H', '32', '-q'];
const AXES = 'sampler=euler,dpmpp_2m;cfg=4,7;steps=2,3';
/** The tiles' settings in A1111's order (X fastest, then Y, then Z). */
const TILES = [2, 3].flatMap((steps) => [4, 7].flatMap((cfgScale) => ['euler', 'dpmpp_2m'].map((sampler) => ({ sampler, cfgScale, steps }))));

interface Pixels {
  width: number;
  height: number;
  data: Buffer;
}

async function pixels(path: string): Promise<Pixels> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

/** The w x h region of `p` at (x, y), as raw RGB bytes. */
function region(p: Pixels, x: number, y: number, w: number, h: number): Buffer {
  const rows = Array.from({ length: h }, (_, r) => p.data.subarray(((y + r) * p.width + x) * 3, ((y + r) * p.width + x + w) * 3));
  return Buffer.concat(rows);
}

test('the grid is the images made alone, tile for tile; labels add margins on top and left only; A1111 metadata; --json lists the tiles', async () => {
  const dir = temp();
  const plain = join(dir, 'plain.png');
  const labelled = join(dir, 'grid.png');
  let r = diffuse(['txt2img', 'a red owl', ...RUN, '--xyz', AXES, '--xyz-no-labels', '-o', plain]);
  assert.is(r.status, 0, r.stderr);
  r = diffuse(['txt2img', 'a red owl', ...RUN, '--xyz', AXES, '--xyz-keep-tiles', '--json', '-o', labelled]);
  assert.is(r.status, 0, r.stderr);
  const record = JSON.parse(r.stdout.trim()) as { path: string; grid: { axes: { axis: string; option: string; values: unknown[] }[] }; tiles: { x: number; y: number; z: number; path: string; seed: number }[] };
  assert.is(record.path, labelled);
  assert.equal(record.grid.axes.map((a) => [a.axis, a.option, a.values]), [['X', 'sampler', ['euler', 'dpmpp_2m']], ['Y', 'cfgScale', ['4', '7']], ['Z', 'steps', ['2', '3']]]);
  assert.is(record.tiles.length, 8);

  // Each image alone: JSON prompts lines, one per tile (the same pipeline, one request each), and the last tile by its own command line.
  const lines = TILES.map((t) => JSON.stringify({ prompt: 'a red owl', ...t }));
  writeFileSync(join(dir, 'tiles.jsonl'), `${lines.join('\n')}\n`);
  r = diffuse(['txt2img', ...RUN, '--prompts-file', join(dir, 'tiles.jsonl'), '-o', join(dir, 'alone.png')]);
  assert.is(r.status, 0, r.stderr);
  r = diffuse(['txt2img', 'a red owl', ...RUN, '--sampler', 'dpmpp_2m', '--cfg-scale', '7', '--steps', '3', '-o', join(dir, 'last.png')]);
  assert.is(r.status, 0, r.stderr);
  const alone = TILES.map((_, i) => join(dir, `alone-${i + 1}.png`));
  assert.equal(readFileSync(join(dir, 'last.png')), readFileSync(alone[7]!), 'the last tile made by its own command equals its prompts-file line');

  const grid = await pixels(plain);
  assert.is(grid.width, 2 * 2 * 32, 'two Z grids of two columns side by side');
  assert.is(grid.height, 2 * 32);
  for (const [i, tile] of record.tiles.entries()) {
    const image = await pixels(alone[i]!);
    assert.equal(region(grid, (tile.z * 2 + tile.x) * 32, tile.y * 32, 32, 32), image.data, `tile ${tile.x},${tile.y},${tile.z}`);
    // --xyz-keep-tiles writes the very file the image alone is (pixels and parameters).
    assert.equal(readFileSync(tile.path), readFileSync(alone[i]!), `kept tile ${i + 1}`);
  }

  const withLabels = await pixels(labelled);
  // Each Z grid has its own left margin (the Y labels); the Z titles add to the top.
  const left = (withLabels.width - grid.width) / 2;
  const top = withLabels.height - grid.height;
  assert.ok(left > 0 && top > 0, `label margins ${left}x${top}`);
  for (const z of [0, 1]) {
    const x0 = z * (2 * 32 + left) + left;
    assert.equal(region(withLabels, x0, top, 64, 64), region(grid, z * 64, 0, 64, 64), `Z grid ${z} under its labels`);
  }
  const margin = region(withLabels, 0, 0, withLabels.width, top);
  assert.ok(margin.includes(0) && margin.includes(255), 'black text on white in the top margin');
  assert.ok(!margin.some((v) => v !== 0 && v !== 255), 'labels are drawn without antialiasing');

  const gridText = readGenerationMetadata(readFileSync(labelled));
  const firstText = readGenerationMetadata(readFileSync(alone[0]!));
  assert.ok(gridText.kind === 'a1111' && firstText.kind === 'a1111');
  const { Script, 'X Type': xType, 'X Values': xValues, 'Y Type': yType, 'Z Values': zValues, ...rest } = gridText.parameters.extra;
  assert.equal([Script, xType, xValues, yType, zValues], ['X/Y/Z plot', 'Sampler', 'euler,dpmpp_2m', 'CFG Scale', '2,3']);
  assert.equal(parseInfotext(firstText.infotext).extra, Object.fromEntries(Object.entries(rest).filter(([k]) => !/^[YZ] (Type|Values)$/.test(k))));
  assert.is(gridText.parameters.steps, 2);
});

test('bad axes: one line, exit 2, nothing written', () => {
  const dir = temp();
  for (const [xyz, says] of [
    ['stpes=1,2', /--xyz axis X: unknown option 'stpes'/],
    ['cfg=4,seven', /--xyz cfg: cfgScale must be a number from 0 to 100 \(got 'seven'\)/],
    ['steps=', /--xyz steps: an empty value/],
    ['seed=1-300', /makes 300 values; at most 256/],
  ] as const) {
    const r = diffuse(['txt2img', 'an owl', ...RUN, '--xyz', xyz, '-o', join(dir, 'x.png')]);
    assert.is(r.status, 2, xyz);
    assert.match(r.stderr, says);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(listFiles(dir), []);
});

test('axes and ranges as A1111 reads them; what is refused', () => {
  const values = (spec: string, command: 'txt2img' | 'img2img' = 'txt2img') => parseXyz(spec, command, 'a red owl').axes.map((a) => a.values);
  // Python's range(1, 6), range(1, 11, 2), range(10, 2, -3); int(np.linspace(1, 10, 5)).
  assert.equal(values('steps=1-5'), [[1, 2, 3, 4, 5]]);
  assert.equal(values('steps=1-10 (+2)'), [[1, 3, 5, 7, 9]]);
  assert.equal(values('steps=10-1 (-3)'), [[10, 7, 4]]);
  assert.equal(values('steps=1-10 [5]'), [[1, 3, 5, 7, 10]]);
  // np.arange(4, 6.5, 1.0); np.linspace(1, 2, 3); a list mixing a range and a value.
  assert.equal(values('cfg=4-6'), [[4, 5, 6]]);
  assert.equal(values('cfg=1-2 [3]'), [[1, 1.5, 2]]);
  assert.equal(values('cfg=3, 5-6 (+0.5)'), [['3', 5, 5.5, 6]]);
  assert.equal(values('width=32-48 (+8);--sampler=euler,"DPM++ 2M Karras"'), [[32, 40, 48], ['euler', 'DPM++ 2M Karras']]);
  assert.equal(values('strength=0.25,0.75', 'img2img'), [['0.25', '0.75']]);
  const sr = parseXyz('prompt=red,blue,green', 'txt2img', 'a red owl on a red branch');
  assert.equal(sr.tiles.map((t) => t.prompt), ['a red owl on a red branch', 'a blue owl on a blue branch', 'a green owl on a green branch']);
  assert.equal(parseXyz('cfg=4,7;seed=1,2', 'txt2img', 'x').axes.map((a) => a.labels), [['cfg: 4', 'cfg: 7'], ['seed: 1', 'seed: 2']]);

  for (const [spec, says] of [
    ['threads=1,2', /threads cannot be an axis/],
    ['output=a.png,b.png', /output cannot be an axis/],
    ['cfg=1;cfgScale=2', /cfgScale is axis X and axis Y/],
    ['a=1;b=2;c=3;d=4', /4 axes; at most 3/],
    ['steps=1-20;cfg=1-20', new RegExp(`20x20x1 = 400 images; at most ${MAX_XYZ_TILES}`)],
    ['steps 1,2', /write option=value/],
    ['steps=1,,2', /an empty value/],
    ['steps=5-1', /an empty range/],
    ['steps=1-5 (+0)', /a step of 0/],
    ['prompt=cat,dog', /'cat' is not in the prompt/],
    ['mask=a.png,b.png', /not an option of txt2img/],
    ['cfg="4,7', /is not closed/],
    ['', /--xyz is empty/],
  ] as const) {
    assert.throws(() => parseXyz(spec, 'txt2img', 'a red owl'), (err: unknown) => err instanceof UsageError && says.test(err.message), spec);
  }
  assert.throws(() => parseXyz('cfg=4,7', 'outpaint', 'x'), /runs on txt2img, img2img, inpaint/);
});

test.run();
