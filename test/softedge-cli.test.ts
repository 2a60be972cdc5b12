import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { HED_FIXTURES, writeHedWeights } from './helpers/hed-weights.js';

/**
 * --control type=softedge|softedge-safe,detector=FILE: the image equals the one made from
 * controlnet_aux's edge map passed as type=none (so the preprocessor's map is what the ControlNet
 * saw), the metadata says sd-webui-controlnet's Module, --from hints at detector=, and a detector
 * that is not HED is one line, exit 2, no image.
 */
const cli = suite('diffuse --control type=softedge');
const CONTROLNET = join(FIXTURES, 'tiny-sd-control', 'controlnet');
let model: AssembledModel;
let dir: string;
let detector: string;
cli.before(() => {
  model = assembleModel('tiny-sd-control');
  dir = tempDir();
  detector = writeHedWeights(dir);
});
cli.after(() => {
  model.remove();
  rmSync(dir, { recursive: true, force: true });
});

const base = (out: string) => ['txt2img', 'a lighthouse', '--model', model.dir, '--steps', '2', '--seed', '5', '-W', '64', '-H', '64', '-o', out, '--quiet'];

for (const [type, name, module] of [['softedge', 'scene-64', 'softedge_hed'], ['softedge-safe', 'scene-128x64', 'softedge_hedsafe']] as const) {
  cli(`type=${type} = its controlnet_aux edge map given as type=none; Module: ${module}`, async () => {
    const out = join(dir, `${type}.png`);
    const r = diffuse([...base(out), '--control', `type=${type},image=${join(HED_FIXTURES, `${name}.png`)},model=${CONTROLNET},detector=${detector}`]);
    assert.is(r.status, 0, r.stderr);
    const given = join(dir, `${type}.given.png`);
    assert.is(diffuse([...base(given), '--control', `type=none,image=${join(HED_FIXTURES, `${name}.edge.png`)},model=${CONTROLNET}`]).status, 0);
    assert.equal((await loadImage(out)).rgb.data, (await loadImage(given)).rgb.data);
    const meta = readGenerationMetadata(readFileSync(out));
    assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
    assert.match(meta.parameters.extra['ControlNet 0'] ?? '', new RegExp(`^Module: ${module}, Model: tiny-sd-control \\[[0-9a-f]{8}\\], Weight: 1\\.0,`));
    if (type === 'softedge') {
      const again = diffuse(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-W', '64', '-H', '64', '-o', join(dir, 'again.png')]);
      assert.is(again.status, 0, again.stderr);
      assert.match(again.stderr, 'pass --control type=softedge,image=<picture>,model=<ControlNet folder>,detector=<ControlNetHED.pth>,weight=1');
    }
  });
}

cli('a detector that is not HED, a missing one, or one on another type: one line, exit 2, no image', () => {
  const picture = join(HED_FIXTURES, 'scene-64.png');
  const cases: [string, RegExp][] = [
    [`type=softedge,image=${picture},model=${CONTROLNET},detector=${join(FIXTURES, 'graphs', 'mini.ckpt')}`, /mini\.ckpt is not HED's ControlNetHED\.pth \(/],
    [`type=softedge,image=${picture},model=${CONTROLNET}`, /type=softedge needs detector=ControlNetHED\.pth/],
    [`type=softedge,image=${picture},model=${CONTROLNET},detector=${join(dir, 'absent.pth')}`, /detector .*absent\.pth: no such file/],
    [`type=canny,image=${picture},model=${CONTROLNET},detector=${detector}`, /detector= is the network of type=softedge\/softedge-safe; type=canny takes none/],
  ];
  for (const [control, message] of cases) {
    const out = join(dir, 'bad.png');
    const r = diffuse([...base(out), '--control', control]);
    assert.is(r.status, 2, `${control}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.not.ok(existsSync(out));
  }
});

cli.run();
