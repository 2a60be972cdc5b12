import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { loadImage } from '../../src/image/load-image.js';
import type { ModelBundle } from '../../src/pipeline/bundle.js';
import { generate } from '../../src/pipeline/generate.js';
import type { GenerationRequest } from '../../src/pipeline/types.js';
import { discreteSchedule } from '../../src/schedulers/index.js';
import { FIXTURES, compare, readF32 } from './fixtures.js';
import { referenceRequest, type ReferenceCase } from './reference-case.js';

/** A diffusers ControlNet pipeline case (tools/make_controlnet_fixture.py run_case): its units and final latents. */
export interface ControlCase extends ReferenceCase {
  guess_mode: boolean;
  units: { image: string; scale: number; start: number; end: number }[];
  final_latents: { file: string };
  /** Inpaint cases: the init picture and mask (paths in the case's folder) and the strength. */
  init_image?: string;
  mask_image?: string;
  strength?: number;
}

/** Where the control pictures of every case are (tools/make_controlnet_fixture.py). */
const PICTURES = join(FIXTURES, 'controlnet-pipeline');

/** The case's request, each unit run by the ControlNet loaded from `model`; `dir` holds the case's files. */
export async function controlRequest(c: ControlCase, model: string, dir: string, extra: Partial<GenerationRequest> = {}): Promise<GenerationRequest> {
  const control = await Promise.all(
    c.units.map(async (u) => ({ model, image: (await loadImage(join(PICTURES, u.image))).rgb, weight: u.scale, start: u.start, end: u.end, guess: c.guess_mode })),
  );
  return referenceRequest(c, { control, ...(c.init_image ? await initFields(c, dir) : {}), ...extra });
}

/** An img2img or inpaint case's init picture and mask (an L-mode PNG read as grey RGB), as diffusers' pipeline got them. */
async function initFields(c: ControlCase, dir: string): Promise<Pick<GenerationRequest, 'init' | 'mask'>> {
  const image = (await loadImage(join(dir, c.init_image!))).rgb;
  const init = { init: { image, strength: c.strength!, latents: 'sample' as const } };
  if (!c.mask_image) return init;
  const mask = (await loadImage(join(dir, c.mask_image))).rgb;
  return { ...init, mask: { values: Float32Array.from({ length: c.width * c.height }, (_, i) => mask.data[i * 3]! / 255) } };
}

/**
 * The case's final latents (in `dir`) within `tolerance` of the largest magnitude, and far from the
 * same request without its units; returns the error (of max).
 */
export async function checkControlCase(b: ModelBundle, c: ControlCase, model: string, dir: string, tolerance: number, extra: Partial<GenerationRequest> = {}): Promise<number> {
  const expected = readF32(join(dir, c.final_latents.file));
  const run = async (request: GenerationRequest) => (await generate({ ...b, schedule: discreteSchedule(c.scheduler.config) }, request)).latents;
  const stats = compare(await run(await controlRequest(c, model, dir, extra)), expected);
  assert.ok(stats.relToMax < tolerance, `${c.name}: max abs error ${stats.maxAbs} (${stats.relToMax} of max)`);
  const plain = await controlRequest(c, model, dir, extra);
  delete plain.control;
  const without = compare(await run(plain), expected);
  assert.ok(without.relToMax > 1e-2, `the ControlNet barely matters: ${without.relToMax} of max without it`);
  return stats.relToMax;
}

/** x + 0 is x: the residual graph (`controlled`) without units paints the plain graph's latents bit for bit on the case's request. */
export async function assertZeroResidualsChangeNothing(plain: ModelBundle, controlled: ModelBundle, c: ControlCase, model: string, dir: string, extra: Partial<GenerationRequest> = {}): Promise<void> {
  const request = await controlRequest(c, model, dir, extra);
  delete request.control;
  const a = await generate({ ...plain, schedule: discreteSchedule(c.scheduler.config) }, request);
  const b = await generate({ ...controlled, schedule: discreteSchedule(c.scheduler.config) }, request);
  assert.equal(b.latents, a.latents, "the residual graph without units paints the plain graph's latents bit for bit");
}
