import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { ensureConvertedControlNet } from '../src/graphs/controlnet-convert.js';
import { loadImage } from '../src/image/load-image.js';
import type { ResizeMode } from '../src/image/resize-modes.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { unitsOnCanvas } from '../src/pipeline/tasks/control-region.js';
import { maskedRegion } from '../src/pipeline/tasks/inpaint.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';
import { checkpointBytes, sha256, writeDiffusersFolder, type Recipe } from './helpers/synthetic-checkpoint.js';

/**
 * ControlNet units with an "only masked" inpaint area and with outpaint against A1111 1.10 + sd-webui-controlnet 1.1.455's
 * algorithm reproduced with diffusers 0.32 (tools/make_controlnet_area_refs.py): the crop region, the init picture, mask
 * and each unit's picture cut and resized as they do, StableDiffusionControlNetInpaintPipeline on the crop; outpaint's
 * canvas, mask and units fitted to the whole canvas, the same pipeline on it. One region (40x32 painted) misses the
 * painted aspect by A1111's truncation and the picture's edge: picture, mask and unit then go through "resize and fill". controlnet-files' 9-channel sd1-inpaint
 * checkpoint and sd1x2 ControlNet; the pipeline references' usual 1e-5 of max.
 */
const TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'controlnet-area');
const FILES = join(FIXTURES, 'controlnet-files');

interface AreaCase extends ReferenceCase {
  units: { image: string; scale: number; start: number; end: number; resize_mode: ResizeMode }[];
  strength: number;
  init_image: string;
  mask_image?: string;
  area?: 'masked';
  padding?: number;
  /** A1111's crop region, [x1, y1, x2, y2]. */
  crop_region?: [number, number, number, number];
  outpaint?: { extend: { left: number; right: number; top: number; bottom: number }; fill: 'stretch'; overlap: number };
  final_latents: { file: string };
}
const manifest = readJson<{ model: string; cases: AreaCase[] }>(join(DIR, 'cases.json'));
const filesManifest = readJson<{ models: { name: string; sha256?: string }[] }>(join(FILES, 'cases.json'));
const rgb = async (path: string) => (await loadImage(path)).rgb;

async function requestFor(c: AreaCase, control: string): Promise<GenerationRequest> {
  const units = await Promise.all(
    c.units.map(async (u) => ({ model: control, image: await rgb(join(FIXTURES, 'controlnet-pipeline', u.image)), weight: u.scale, start: u.start, end: u.end, resizeMode: u.resize_mode })),
  );
  const image = await rgb(join(FIXTURES, 'pipeline', c.init_image));
  const init = { image, strength: c.strength, latents: 'sample' as const };
  if (c.outpaint) return referenceRequest(c, { control: units, init, outpaint: c.outpaint });
  const mask = await rgb(join(FIXTURES, 'pipeline', c.mask_image!));
  const values = Float32Array.from({ length: mask.width * mask.height }, (_, i) => mask.data[i * 3]! / 255);
  return referenceRequest(c, { control: units, init, mask: { values, area: 'masked', padding: c.padding! } });
}

const test = suite('ControlNet with an "only masked" area and outpaint = A1111 + sd-webui-controlnet on diffusers');
const temp = scratch(test);
let bundle: ModelBundle;
let control: string;
test.before(async () => {
  const work = temp();
  const bytes = checkpointBytes(readJson<Recipe>(join(FILES, 'sd1-inpaint.recipe.json.gz')));
  const expected = filesManifest.models.find((m) => m.name === 'sd1-inpaint')!.sha256!;
  assert.is(sha256(bytes), expected, 'the checkpoint written from the recipe is the one the reference loaded');
  assert.ok(manifest.model.includes(expected), 'the area references were made with that checkpoint');
  writeFileSync(join(work, 'sd1-inpaint.safetensors'), bytes);
  const dir = (await convertCheckpoint(join(work, 'sd1-inpaint.safetensors'), join(work, 'onnx'), { precision: 'fp32' })).dir;
  control = await ensureConvertedControlNet(writeDiffusersFolder(join(work, 'sd1x2'), 'sd1x2', { layoutDir: FILES, tokenizers: {} }), join(work, 'cache'));
  bundle = await loadModel(dir, { device: 'cpu', graphCache: join(work, 'graphs'), withEncoder: true, controlnets: [control] });
});
test.after(async () => {
  await bundle?.release();
});

assert.ok(manifest.cases.some((c) => c.area === 'masked') && manifest.cases.some((c) => c.outpaint), 'both tasks have cases');
for (const c of manifest.cases) {
  test(`${c.name}: final latents, and the units matter`, async () => {
    const run = async (request: GenerationRequest) => (await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, request)).latents;
    const expected = readF32(join(DIR, c.final_latents.file));
    const request = await requestFor(c, control);
    if (c.crop_region) {
      const box = await maskedRegion(request.init!.image, request.mask!, request);
      assert.equal([box.x0, box.y0, box.x1, box.y1], c.crop_region, 'the crop region is A1111\'s');
    }
    const stats = compare(await run(request), expected);
    assert.ok(stats.relToMax < TOLERANCE, `${c.name}: max abs error ${stats.maxAbs} (${stats.relToMax} of max)`);
    const { control: _units, ...plain } = request;
    const without = compare(await run(plain), expected);
    assert.ok(without.relToMax > 1e-2, `the ControlNet barely matters: ${without.relToMax} of max without it`);
  });
}

test('outpaint in passes: every pass reads its own window of the pictures fitted to the final canvas', () => {
  // A 4x2 picture whose pixel values are their x and y, fitted (unchanged) to a 4x2 final canvas.
  const data = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => (i % 3 === 0 ? Math.floor(i / 3) % 4 : i % 3 === 1 ? Math.floor(i / 12) : 0));
  const units = unitsOnCanvas([{ model: 'm', image: { width: 4, height: 2, channels: 3, data }, weight: 1, start: 0, end: 1 }], { width: 4, height: 2 });
  const window = units.window({ x0: 1, y0: 1, x1: 3, y1: 2 })![0]!.image;
  assert.equal([window.width, window.height], [2, 1]);
  assert.equal([...window.data], [1, 1, 0, 2, 1, 0]);
});

test.run();
