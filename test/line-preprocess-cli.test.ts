import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';

/**
 * --control type=scribble-xdog|lineart-standard: the image equals the one made from sd-webui-controlnet's own map
 * (tools/make_line_preprocess_refs.py) passed as type=none, so the map is what the ControlNet saw; the metadata
 * says the extension's Module and Threshold A (xdog's level, 32 unless given), and --from gives level= back.
 */
const cli = suite('diffuse --control type=scribble-xdog|lineart-standard');
const CONTROLNET = join(FIXTURES, 'tiny-sd-control', 'controlnet');
const MAPS = join(FIXTURES, 'preprocess-lines');
let model: AssembledModel;
let dir: string;
cli.before(() => {
  model = assembleModel('tiny-sd-control');
  dir = tempDir();
});
cli.after(() => {
  model.remove();
  rmSync(dir, { recursive: true, force: true });
});

const base = (out: string) => ['txt2img', 'a lighthouse', '--model', model.dir, '--steps', '2', '--seed', '5', '-W', '64', '-H', '64', '-o', out, '--quiet'];

const CASES = [
  ['scribble-xdog', '', 'drawing-70x45.scribble_xdog-32.png', 'Module: scribble_xdog, Model: tiny-sd-control \\[[0-9a-f]{8}\\], Weight: 1\\.0, .*Threshold A: 32'],
  ['scribble-xdog', ',level=12', 'scene-64.scribble_xdog-12.png', 'Module: scribble_xdog, .*Threshold A: 12'],
  ['lineart-standard', '', 'drawing-70x45.lineart_standard.png', 'Module: lineart_standard, Model: tiny-sd-control'],
] as const;

for (const [type, extra, map, record] of CASES) {
  cli(`type=${type}${extra} = the extension's map given as type=none`, async () => {
    const picture = join(MAPS, `${map.split('.')[0]}.png`);
    const out = join(dir, `${map}.out.png`);
    const r = diffuse([...base(out), '--control', `type=${type},image=${picture},model=${CONTROLNET}${extra}`]);
    assert.is(r.status, 0, r.stderr);
    const given = join(dir, `${map}.given.png`);
    assert.is(diffuse([...base(given), '--control', `type=none,image=${join(MAPS, map)},model=${CONTROLNET}`]).status, 0);
    assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
    assert.match(meta.parameters.extra['ControlNet 0'] ?? '', new RegExp(`^${record}`));
    if (extra) {
      const again = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-W', '64', '-H', '64', '-o', join(dir, 'again.png')]);
      assert.is(again.status, 0, again.stderr);
      assert.match(again.stderr, 'pass --control type=scribble-xdog,image=<picture>,model=<ControlNet folder>,weight=1,start=0,end=1,resize=just-resize,level=12');
    }
  });
}

cli.run();
