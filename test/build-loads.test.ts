import { symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runBuild, type BuildEvent } from '../src/build/build.js';
import { loadModel } from '../src/pipeline/load.js';
import { TINY_SD } from './helpers/cli.js';
import { scratch } from './helpers/scratch.js';

/** One model load serves every output of a build that uses it (the generation plan's load groups). */
const test = suite('build-loads');
const temp = scratch(test);

test('a manifest of 20 outputs on one model, txt2img and img2img, costs one load', async () => {
  const dir = temp('diffuse-build-loads-');
  symlinkSync(TINY_SD, join(dir, 'tiny-sd'));
  await sharp(Buffer.alloc(32 * 32 * 3, 120), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(join(dir, 'in.png'));
  writeFileSync(
    join(dir, 'assets.yaml'),
    `defaults: { model: ./tiny-sd, steps: 1, sampler: euler, width: 32, height: 32 }
outputs:
  "t/{{seed}}.png": { prompt: "a fox number {{seed}}", matrix: { seed: [${Array.from({ length: 19 }, (_, i) => i + 1).join(', ')}] } }
  r.png: { command: img2img, prompt: a house, initImage: in.png, seed: 7 }
`,
  );
  const loads: string[] = [];
  const seen: BuildEvent[] = [];
  const result = await runBuild(
    { manifest: join(dir, 'assets.yaml'), device: 'cpu', offline: true },
    {
      chooseModel: async (ref) => ({ dir: ref }),
      chooseVae: async () => {
        throw new Error('no output names a VAE');
      },
      load: async (modelDir, options) => {
        loads.push(modelDir);
        return loadModel(modelDir, options);
      },
      onEvent: (e) => seen.push(e),
    },
  );
  assert.is(result.built.length, 20);
  assert.equal(loads, [join(dir, 'tiny-sd')]);
  assert.equal(seen.filter((e) => e.event === 'load'), [{ event: 'load', model: './tiny-sd', assets: 20 }]);
});

test.run();
