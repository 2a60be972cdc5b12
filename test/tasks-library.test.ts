import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { luminance } from '../src/image/mask.js';
import { generate } from '../src/pipeline/generate.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/**
 * Inpainting a masked area and outpainting are fields of the one request: a library caller of
 * generate() gets the same pixels as the CLI, which builds the same request from its flags.
 */
const INIT = join(FIXTURES, 'pipeline/input.init-image.32x32.png');
const MASK = join(FIXTURES, 'pipeline/input.mask.32x32.png');
const cli = ['--model', TINY_SD, '--sampler', 'euler', '--steps', '3', '--seed', '21', '--quiet'];

const s = suite('tasks through generate() = the CLI');
// As the CLI loads a model: attention fused.
const model = withModel(s, TINY_SD, { withEncoder: true, fuseAttention: true });

async function cliPixels(args: string[]): Promise<Uint8Array> {
  const file = join(tempDir(), 'out.png');
  const r = diffuse([...args, ...cli, '-o', file]);
  assert.is(r.status, 0, r.stderr);
  const { data } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

const base = (overrides: Partial<GenerationRequest>): GenerationRequest => tinyRequest({ prompt: 'a red house', seed: 21, sdeNoise: 'brownian', ...overrides });

s('inpaint "only masked": the crop painted at the native size and pasted back', async () => {
  const image = (await loadImage(INIT)).rgb;
  const values = luminance((await loadImage(MASK)).rgb);
  const request = base({
    init: { image, strength: 1, latents: 'sample' },
    mask: { values, blur: 4, overlay: 'mask', area: 'masked', padding: 8 },
  });
  const library = await generate(model(), request);
  const fromCli = await cliPixels(['inpaint', 'a red house', '-i', INIT, '--mask', MASK, '--inpaint-area', 'masked', '--masked-padding', '8']);
  assert.is(library.images[0]!.image.width, 32);
  assert.equal(library.images[0]!.image.data, fromCli);
});

s('outpaint: the canvas grown in passes, each image alone', async () => {
  const image = (await loadImage(INIT)).rgb;
  const request = base({
    init: { image, strength: 1, latents: 'sample' },
    outpaint: { extend: { left: 16, right: 0, top: 8, bottom: 0 }, passSize: 8 },
    width: 48,
    height: 40,
  });
  const events: string[] = [];
  const library = await generate(model(), request, (e) => (e.kind === 'pass' ? events.push(`${e.pass}/${e.passes}`) : undefined));
  assert.equal(events, ['1/2', '2/2'], 'two passes of at most 8 px per side');
  const fromCli = await cliPixels(['outpaint', 'a red house', '-i', INIT, '--extend', 'left=16,top=8', '--pass-size', '8']);
  assert.equal([library.images[0]!.image.width, library.images[0]!.image.height], [48, 40]);
  assert.equal(library.images[0]!.image.data, fromCli);
});

s.run();
