import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { luminance } from '../src/image/mask.js';
import { cannyControlMap } from '../src/image/preprocess/canny.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { pictureInRegion } from '../src/pipeline/tasks/control-region.js';
import { maskedRegion } from '../src/pipeline/tasks/inpaint.js';
import type { ControlUnit, GenerationRequest } from '../src/pipeline/types.js';
import { diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { tinyRequest } from './helpers/tiny-model.js';

/**
 * diffuse inpaint --inpaint-area masked and diffuse outpaint with --control = the library's request: an "only masked"
 * unit's picture is cut to the painted region before its preprocessor (sd-webui-controlnet's try_crop_image_with_a1111_mask
 * runs before the preprocessor), not its map after; an outpaint's units are fitted to the grown canvas.
 */
const INIT = join(FIXTURES, 'pipeline/input.init-image.32x32.png');
const MASK = join(FIXTURES, 'pipeline/input.mask.32x32.png');
const PICTURE = join(FIXTURES, 'controlnet-pipeline/control.wide.png');
const CONTROLNET = join(FIXTURES, 'tiny-sd-control', 'controlnet');

const s = suite('ControlNet with an inpaint area and outpaint: the CLI = generate()');
let model: AssembledModel;
let bundle: ModelBundle;
s.before(async () => {
  model = assembleModel('tiny-sd-control');
  // As the CLI loads a model: attention fused.
  bundle = await loadModel(model.dir, { device: 'cpu', withEncoder: true, fuseAttention: true, controlnets: [CONTROLNET] });
});
s.after(async () => {
  await bundle.release();
  model.remove();
});

async function cliPixels(args: string[]): Promise<Uint8Array> {
  const file = join(tempDir(), 'out.png');
  const r = diffuse([...args, '--model', model.dir, '--sampler', 'euler', '--steps', '3', '--seed', '21', '--quiet', '-o', file]);
  assert.is(r.status, 0, r.stderr);
  const { data } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

const base = (overrides: Partial<GenerationRequest>): GenerationRequest => tinyRequest({ prompt: 'a red house', seed: 21, sdeNoise: 'brownian', ...overrides });
const unit = (image: ControlUnit['image'], extra: Partial<ControlUnit> = {}): ControlUnit => ({ model: CONTROLNET, image, weight: 1, start: 0, end: 1, ...extra });

s('inpaint "only masked" with type=canny: canny runs on the picture cut to the region (not the whole picture\'s map cut)', async () => {
  const image = (await loadImage(INIT)).rgb;
  const picture = (await loadImage(PICTURE)).rgb;
  const mask = { values: luminance((await loadImage(MASK)).rgb), blur: 0, overlay: 'mask' as const, area: 'masked' as const, padding: 2 };
  const painted = { width: 32, height: 32 };
  const region = await maskedRegion(image, mask, painted);
  assert.ok(region.x1 - region.x0 < 32 || region.y1 - region.y0 < 32, `a region smaller than the picture: ${JSON.stringify(region)}`);
  const request = (control: ControlUnit) => base({ init: { image, strength: 1, latents: 'sample' }, mask, control: [control] });
  const cut = pictureInRegion(picture, 'just-resize', image, region, painted);
  const library = await generate(bundle, request(unit(cannyControlMap(cut, 100, 200), { inRegion: true })));
  const fromCli = await cliPixels(['inpaint', 'a red house', '-i', INIT, '--mask', MASK, '--inpaint-area', 'masked', '--masked-padding', '2', '--mask-blur', '0', '--control', `type=canny,image=${PICTURE},model=${CONTROLNET},low=100,high=200`]);
  assert.equal(library.images[0]!.image.data, fromCli);
  const mapCut = await generate(bundle, request(unit(cannyControlMap(picture, 100, 200))));
  assert.not.equal(mapCut.images[0]!.image.data, fromCli, 'cutting the whole picture\'s map paints another picture');
});

s('outpaint with type=none: the unit fitted to the grown canvas, each pass its window', async () => {
  const image = (await loadImage(INIT)).rgb;
  const picture = (await loadImage(PICTURE)).rgb;
  const request = base({
    init: { image, strength: 1, latents: 'sample' },
    outpaint: { extend: { left: 16, right: 0, top: 8, bottom: 0 }, passSize: 8 },
    width: 48,
    height: 40,
    control: [unit(picture)],
  });
  const library = await generate(bundle, request);
  const fromCli = await cliPixels(['outpaint', 'a red house', '-i', INIT, '--extend', 'left=16,top=8', '--pass-size', '8', '--control', `type=none,image=${PICTURE},model=${CONTROLNET}`]);
  assert.equal(library.images[0]!.image.data, fromCli);
  const { control: _units, ...plain } = request;
  assert.not.equal((await generate(bundle, plain)).images[0]!.image.data, fromCli, 'the unit changes the picture');
});

s.run();
