import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../src/image/encode-png.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { createRaster } from '../src/image/raster.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';

/**
 * --from is a layer between the config file and the flags: what the image records wins over the
 * config, and so do the defaults its writer (diffuse or A1111) leaves out — an image without
 * `Clip skip` or `ENSD` was made with 1 and 0, whatever this machine's config says.
 */
const s = suite('--from: the image, then its writer\'s defaults, before the config file');
const CONFIG = { clipSkip: 2, ensd: 31337, promptWeighting: 'comfy', schedule: 'karras', cfgRescale: 0.5, negativePrompt: 'blurry' };

function project(): string {
  const dir = tempDir();
  writeFileSync(join(dir, '.diffuserc.json'), JSON.stringify(CONFIG));
  return dir;
}

s('an image diffuse made with defaults re-runs byte for byte under a config that sets other values', () => {
  const dir = tempDir();
  const first = join(dir, 'a.png');
  assert.is(diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--steps', '2', '--seed', '5', '--quiet', '-o', first]).status, 0);
  const cwd = project();
  const again = join(cwd, 'b.png');
  const r = diffuse(['txt2img', '--from', first, '--model', TINY_SD, '--quiet', '-o', again], { cwd });
  assert.is(r.status, 0, r.stderr);
  assert.equal(readFileSync(again), readFileSync(first));
});

s("an A1111 infotext that omits keys gets A1111's defaults; a flag still wins", async () => {
  const cwd = project();
  const source = join(cwd, 'a1111.png');
  const text = 'a fox\nSteps: 2, Sampler: Euler a, CFG scale: 7.0, Seed: 5, Size: 32x32, Model: tiny-sd, Version: v1.10.1';
  writeFileSync(source, await encodePng(createRaster(32, 32, 3), [{ keyword: 'parameters', text }]));
  const params = (args: string[]) => {
    const out = join(cwd, `${args.length}.png`);
    const r = diffuse(['txt2img', '--from', source, '--model', TINY_SD, '--quiet', '-o', out, ...args], { cwd });
    assert.is(r.status, 0, r.stderr);
    const meta = readGenerationMetadata(readFileSync(out));
    if (meta.kind !== 'a1111') throw new Error('no parameters');
    return meta.parameters;
  };
  const p = params([]);
  assert.is(p.negativePrompt, '');
  assert.is(p.clipSkip, undefined, 'Clip skip 1');
  assert.is(p.ensd, undefined, 'no ENSD');
  assert.is(p.extra['Prompt weighting'], undefined, "A1111's weighting");
  assert.is(p.extra['CFG Rescale'], undefined);
  // A1111's "Automatic" for Euler a is k-diffusion's get_sigmas, which A1111 calls Uniform; the config's Karras stays out.
  assert.is(p.scheduleType, 'Uniform');
  assert.is(params(['--clip-skip', '2']).clipSkip, 2);
});

s.run();
