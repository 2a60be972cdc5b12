import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../src/errors.js';
import { interpolate, type InterpolateMode } from '../src/image/interpolate.js';
import { generate } from '../src/pipeline/generate.js';
import { hiresTarget } from '../src/pipeline/tasks/hires.js';
import type { GenerationRequest, HiresFix, HiresUpscaler } from '../src/pipeline/types.js';
import type { ModelBundle } from '../src/pipeline/bundle.js';
import type { VaeDecoder } from '../src/pipeline/vae.js';
import { resolveSampler } from '../src/schedulers/index.js';
import { promptSchedule } from '../src/text/prompt-schedule.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/**
 * The hires fix against A1111's algorithm restated with diffusers components and k-diffusion's
 * samplers (tools/make_hires_refs.py) on tiny-sd, from the seed alone: first pass, latent or image
 * upscale, second pass. Latents within the pipeline references' usual 1e-5 of max.
 */
const LATENT_TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'hires');

interface Ref {
  file: string;
  shape: number[];
}
interface Case {
  name: string;
  request: {
    prompt: string;
    negative: string;
    seed: number;
    sampler: string;
    steps: number;
    upscaler: HiresUpscaler;
    strength: number;
    cfg: number;
    width: number;
    height: number;
    scale: number;
    resize: [number, number] | null;
    hr_steps: number;
    hr_sampler: string | null;
    hr_cfg: number | null;
    hr_prompt: string;
    hr_negative: string;
  };
  target: { upscale_to: [number, number]; truncate: [number, number]; latent_size: [number, number] };
  hires_schedule: [number, string][];
  first_pass_schedule: [number, string][];
  first_pass_latents: Ref;
  final_latents: Ref;
  /** Image upscalers only: the reference VAE's decoded first pass, before A1111's 8-bit truncation. */
  first_pass_decoded?: Ref;
}
interface Manifest {
  vae_factor: number;
  interpolate: { input: Ref; cases: { mode: InterpolateMode; antialias: boolean; size: [number, number]; output: Ref }[] };
  cases: Case[];
}
const manifest = readJson<Manifest>(join(DIR, 'cases.json'));

/** The reference's sampler names as A1111 spells them. */
const A1111_NAMES: Record<string, [string, string | undefined]> = { euler: ['Euler', undefined], euler_a: ['Euler a', undefined], dpmpp_2m_karras: ['DPM++ 2M', 'Karras'] };
const sampling = (name: string) => {
  const [sampler, schedule] = A1111_NAMES[name]!;
  return resolveSampler(sampler, schedule);
};

function requestFor(c: Case): GenerationRequest {
  const r = c.request;
  const hires: HiresFix = {
    target: r.resize ? { width: r.resize[0], height: r.resize[1] } : { scale: r.scale },
    upscaler: r.upscaler,
    strength: r.strength,
    ...(r.hr_steps ? { steps: r.hr_steps } : {}),
    ...(r.hr_sampler ? { sampling: sampling(r.hr_sampler) } : {}),
    ...(r.hr_cfg !== null ? { cfgScale: r.hr_cfg } : {}),
    ...(r.hr_prompt ? { prompt: r.hr_prompt } : {}),
    ...(r.hr_negative ? { negativePrompt: r.hr_negative } : {}),
  };
  return tinyRequest({ prompt: r.prompt, negativePrompt: r.negative, seed: r.seed, steps: r.steps, cfgScale: r.cfg, width: r.width, height: r.height, ...sampling(r.sampler), hires });
}

const torch = suite('F.interpolate as torch 2.5.1 on the CPU');
const input = readF32(join(DIR, manifest.interpolate.input.file));
const dims = manifest.interpolate.input.shape as [number, number, number, number];
for (const c of manifest.interpolate.cases) {
  torch(`${c.mode}${c.antialias ? ' antialiased' : ''} ${dims[2]}x${dims[3]} -> ${c.size.join('x')}`, () => {
    const want = readF32(join(DIR, c.output.file));
    const got = interpolate(input, dims, c.size[0], c.size[1], c.mode, c.antialias);
    const stats = compare(got, want);
    // Nearest modes copy values: bit-exact. The filters' float32 sums round differently from
    // torch's kernels in a few last places (seen: at most 5.3e-6 abs on values up to 9, 7e-7 of max).
    if (c.mode.startsWith('nearest')) assert.is(stats.maxAbs, 0);
    else assert.ok(stats.relToMax <= 1e-6, `${stats.maxAbs} abs, ${stats.relToMax} of max`);
  });
}
torch.run();

const rules = suite('hires fix: target size, prompt schedule offsets, refusals');
rules('calculate_target_resolution for every case', () => {
  for (const c of manifest.cases) {
    const r = c.request;
    const t = hiresTarget(r.width, r.height, r.resize ? { width: r.resize[0], height: r.resize[1] } : { scale: r.scale }, manifest.vae_factor);
    assert.equal([t.upscaleWidth, t.upscaleHeight, t.truncateX, t.truncateY], [...c.target.upscale_to, ...c.target.truncate], c.name);
    assert.equal([t.height / manifest.vae_factor, t.width / manifest.vae_factor], c.target.latent_size, c.name);
  }
});
rules('A1111 1.10 sizes at SD 1.5 scale: 512x768 by 1.5, and resize 1024x1024 from 512x768 (crop 16 latent rows)', () => {
  assert.equal(hiresTarget(512, 768, { scale: 1.5 }, 8), { upscaleWidth: 768, upscaleHeight: 1152, truncateX: 0, truncateY: 0, width: 768, height: 1152 });
  assert.equal(hiresTarget(512, 768, { width: 1024, height: 1024 }, 8), { upscaleWidth: 1024, upscaleHeight: 1536, truncateX: 0, truncateY: 64, width: 1024, height: 1024 });
});
rules("prompt editing's hires offsets (A1111's own doctest: [b:1.5] over 10 + 10 steps switches at 5)", () => {
  assert.equal(promptSchedule('a [b:1.5] c', 10, 10), [{ endStep: 5, text: 'a  c' }, { endStep: 10, text: 'a b c' }]);
  assert.equal(promptSchedule('a [b:.5] c', 10, 10), [{ endStep: 10, text: 'a b c' }]);
  for (const c of manifest.cases) {
    const r = c.request;
    const steps = r.hr_steps || r.steps;
    assert.equal(promptSchedule(r.hr_prompt || r.prompt, steps, r.steps).map((e) => [e.endStep, e.text]), c.hires_schedule, c.name);
    assert.equal(promptSchedule(r.prompt, r.steps).map((e) => [e.endStep, e.text]), c.first_pass_schedule, c.name);
  }
});
rules.run();

/**
 * The bundle with every VAE decode recorded, and the first (the hires fix's decode of the first pass)
 * answered by `picture` when one is given.
 */
function recordingDecoder(bundle: ModelBundle, picture?: Float32Array): { bundle: ModelBundle; decoded: Float32Array[] } {
  const decoded: Float32Array[] = [];
  const real = bundle.vaeDecoder;
  const decoder = Object.create(real) as VaeDecoder;
  decoder.decode = async (latents, dims) => {
    const out = await real.decode(latents, dims);
    decoded.push(out.data);
    return decoded.length === 1 && picture ? { ...out, data: picture } : out;
  };
  return { bundle: { ...bundle, vaeDecoder: decoder }, decoded };
}

/** A1111's 8-bit level of a decoded value: clamp((x + 1) / 2) × 255, truncated. */
const level = (x: number) => Math.trunc(255 * Math.min(1, Math.max(0, (x + 1) / 2)));

/**
 * How far from a level boundary (in levels) a float32 decode may fall and still truncate to either
 * side on another CPU: the decode itself agrees to about 1e-5 of max (about 3e-3 levels here).
 */
const TIE_LEVELS = 0.01;

const pipeline = suite('hires fix = A1111 restated with diffusers components and k-diffusion');
const model = withModel(pipeline, undefined, { withEncoder: true });
for (const c of manifest.cases) {
  pipeline(c.name, async () => {
    const want = readF32(join(DIR, c.final_latents.file));
    const reference = c.first_pass_decoded && readF32(join(DIR, c.first_pass_decoded.file));
    const run = recordingDecoder(model());
    const result = await generate(run.bundle, requestFor(c));
    const stats = compare(result.latents, want);
    console.log(`  ${c.name}: max abs ${stats.maxAbs.toExponential(2)}, ${stats.relToMax.toExponential(2)} of max`);
    const [h, w] = c.target.latent_size;
    assert.equal([result.images[0]!.image.width, result.images[0]!.image.height], [w * manifest.vae_factor, h * manifest.vae_factor]);
    if (!reference) {
      assert.ok(stats.relToMax <= LATENT_TOLERANCE, `${stats.relToMax} of max`);
      return;
    }
    // Image upscalers truncate the decoded first pass to 8 bits. The decode matches the reference
    // to float noise, and a level flips only where the reference's value is a tie at that noise
    // (torch's own AVX2 and AVX-512 runs flip one here, moving its final latents by 2.8e-5 of max).
    const ours = run.decoded[0]!;
    const decode = compare(ours, reference);
    assert.ok(decode.relToMax <= LATENT_TOLERANCE, `first-pass decode ${decode.relToMax} of max`);
    let flips = 0;
    for (let i = 0; i < ours.length; i++) {
      if (level(ours[i]!) === level(reference[i]!)) continue;
      flips++;
      const scaled = 255 * ((reference[i]! + 1) / 2);
      assert.ok(Math.abs(scaled - Math.round(scaled)) <= TIE_LEVELS, `level ${level(ours[i]!)} vs ${level(reference[i]!)} at ${scaled} is no tie`);
    }
    if (flips === 0) assert.ok(stats.relToMax <= LATENT_TOLERANCE, `${stats.relToMax} of max`);
    else console.log(`  ${c.name}: ${flips} of ${ours.length} first-pass levels were ties truncated the other way`);
    // From the reference's own pixels the second pass is the reference's, on any CPU.
    const same = await generate(recordingDecoder(model(), reference).bundle, requestFor(c));
    const second = compare(same.latents, want);
    console.log(`  ${c.name} from the reference's first-pass pixels: ${second.relToMax.toExponential(2)} of max`);
    assert.ok(second.relToMax <= LATENT_TOLERANCE, `from the reference's pixels ${second.relToMax} of max`);
  });
}
pipeline('without the hires fix the first pass alone is what the reference recorded (its latents), for every first-pass sampler', async () => {
  for (const c of manifest.cases) {
    const { hires: _hires, ...first } = requestFor(c);
    const result = await generate(model(), first);
    const stats = compare(result.latents, readF32(join(DIR, c.first_pass_latents.file)));
    assert.ok(stats.relToMax <= LATENT_TOLERANCE, `${c.name}: first pass ${stats.relToMax} of max`);
  }
});
pipeline('refused in one line: scale 1, strength 0, a size off the grid, img2img, a refiner', async () => {
  const base = requestFor(manifest.cases[0]!);
  const bad: [Partial<HiresFix> | Partial<GenerationRequest>, RegExp][] = [
    [{ hires: { ...base.hires!, target: { scale: 1 } } }, /hires scale must be a number above 1/],
    [{ hires: { ...base.hires!, target: { scale: Number.NaN } } }, /hires scale/],
    [{ hires: { ...base.hires!, strength: 0 } }, /hires strength/],
    [{ hires: { ...base.hires!, target: { width: 60, height: 64 } } }, /multiples of 8/],
    [{ hires: { ...base.hires!, target: { scale: 400 } } }, /8192-pixel limit/],
    [{ init: { image: { width: 32, height: 32, channels: 3, data: new Uint8Array(32 * 32 * 3) }, strength: 0.5, latents: 'mean' } }, /txt2img only/],
    [{ refinerSwitch: 0.8 }, /refiner/],
  ];
  for (const [change, message] of bad) {
    try {
      await generate(model(), { ...base, ...change } as GenerationRequest);
      assert.unreachable(`accepted ${JSON.stringify(change).slice(0, 60)}`);
    } catch (err) {
      assert.ok(err instanceof UsageError && message.test((err as Error).message), String(err));
    }
  }
});
pipeline.run();
