import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { probeProviderIsolated } from '../src/onnx/probe.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import type { GenerationRequest, GenerationResult } from '../src/pipeline/types.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { readPngText } from '../src/image/png-text.js';
import { hasGpuDevice } from '../src/onnx/gpu-device.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { assembleModel, assembleSdxl } from './helpers/assemble-model.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';

/**
 * The pipeline on onnxruntime-node's WebGPU provider against the same pipeline on the CPU, on
 * diffusers' reference cases (test/fixtures/pipeline, sdxl-pipeline), through loadModel + generate:
 * txt2img, img2img and inpaint in float32, and a float16 UNet.
 *
 * In float32 they differ only in the order a shader and MLAS sum the terms of each
 * convolution and matmul (and in exp/erf/rsqrt implementations). One float32 sum of n terms is
 * off by at most n·2⁻²⁴ of the sum of magnitudes: for the longest reductions here (3·3·64 = 576
 * terms) 3.4e-5 in the worst case, about √576·2⁻²⁴ ≈ 1.4e-6 typically. So the final latents are
 * held to 1e-4 of their largest magnitude — above that worst case, far below any real fault (a
 * wrong kernel, a lost input, a half-precision intermediate moves them by 1e-3 and more) — and
 * the 8-bit images to one level, a value rounding either side of a .5 boundary. Each case prints
 * its differences, so CI's log shows them.
 *
 * In CI (CI=true) .ci/webgpu-adapter.sh installs a software Vulkan adapter (Mesa's lavapipe) and
 * a missing adapter fails these tests; elsewhere they are skipped with one line saying why.
 */
const LATENT_TOLERANCE = 1e-4;
/**
 * A half-precision graph (test/fixtures/tiny-sdxl-fp16, as the Hub's fp16 exports): the WebGPU
 * provider computes in float16, whose unit roundoff is 2⁻¹¹ ≈ 4.9e-4, and rounds every activation
 * it stores to it; the CPU provider on x86 has few float16 kernels and runs the rest in float32
 * between Casts (it lands 8e-4 of max from diffusers' float32 result: the weights' own rounding
 * to float16, which both providers share). Six steps of
 * two UNet passes compound the GPU's roundings: latents are held to 1e-2 of max (about 20 unit
 * roundoffs; a broken kernel moves them by 1e-1 and more) and pixels to the same share of 255,
 * three levels.
 */
const FP16_LATENT_TOLERANCE = 1e-2;
const FP16_PIXEL_TOLERANCE = 3;

interface Case extends ReferenceCase {
  strength?: number;
  init_image?: string;
  final_latents: { file: string };
}

const DIR = join(FIXTURES, 'pipeline');
const manifest = readJson<{ txt2img: Case[]; img2img: Case[]; inpaint: Case[]; inputs: Record<string, { init_image: string; mask: string }> }>(join(DIR, 'cases.json'));

/** The fewest steps among the references, so each case stays short on a software adapter. */
function pick(cases: Case[], name: string, kind?: string): Case {
  const c = cases.find((x) => x.name === name && (kind === undefined || (x as { kind?: string }).kind === kind));
  if (!c) throw new Error(`no reference case ${name}`);
  return c;
}

async function requestFor(c: Case, masked: boolean): Promise<GenerationRequest> {
  if (c.init_image === undefined) return referenceRequest(c);
  const input = manifest.inputs[c.init_image]!;
  const image = (await loadImage(join(DIR, input.init_image))).rgb;
  const maskRaster = (await loadImage(join(DIR, input.mask))).rgb;
  const values = new Float32Array(c.width * c.height).map((_, i) => maskRaster.data[i * 3]! / 255);
  return referenceRequest(c, { init: { image, strength: c.strength!, latents: 'sample' }, ...(masked ? { mask: { values } } : {}) });
}

const s = suite('WebGPU = CPU through the pipeline');
let unavailable: string | undefined;
type Kind = 'plain' | 'inpaint' | 'fp16';
const bundles: Record<Kind, Partial<Record<'cpu' | 'webgpu', ModelBundle>>> = { plain: {}, inpaint: {}, fp16: {} };
const removers: (() => void)[] = [];

s.before(async () => {
  const probe = await probeProviderIsolated('webgpu');
  if (!probe.works) {
    // ONNX Runtime's message leads with its source line and the failed check; the reason follows.
    unavailable = `no WebGPU adapter here (${probe.detail.replace(/^.* was false\. /, '')}); .ci/webgpu-adapter.sh sets up a software one (Mesa >= 24's lavapipe)`;
    if (process.env.CI !== 'true') process.stdout.write(`\n  skipped: the WebGPU tests: ${unavailable}\n`);
    return;
  }
  const inpaint = assembleModel('tiny-sd-inpaint');
  const fp16 = assembleSdxl('tiny-sdxl-fp16');
  removers.push(inpaint.remove, fp16.remove);
  for (const device of ['cpu', 'webgpu'] as const) {
    bundles.plain[device] = await loadModel(TINY_SD, { device, withEncoder: true });
    bundles.inpaint[device] = await loadModel(inpaint.dir, { device, withEncoder: true });
    bundles.fp16[device] = await loadModel(fp16.dir, { device });
  }
});
s.after(async () => {
  for (const pair of Object.values(bundles)) for (const b of Object.values(pair)) await b.release();
  for (const remove of removers) remove();
});

/** False (after failing in CI) when there is no adapter to run on. */
function adapter(): boolean {
  if (unavailable === undefined) return true;
  if (process.env.CI === 'true') assert.unreachable(unavailable);
  return false;
}

function levels(a: Uint8Array | Uint8ClampedArray, b: Uint8Array | Uint8ClampedArray): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function both(kind: Kind, request: GenerationRequest, c: Case): Promise<Record<'cpu' | 'webgpu', GenerationResult>> {
  const out: Partial<Record<'cpu' | 'webgpu', GenerationResult>> = {};
  for (const device of ['cpu', 'webgpu'] as const) {
    const bundle = bundles[kind][device]!;
    out[device] = await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, request);
  }
  return out as Record<'cpu' | 'webgpu', GenerationResult>;
}

const SDXL_DIR = join(FIXTURES, 'sdxl-pipeline');
const sdxl = readJson<{ txt2img: Case[] }>(join(SDXL_DIR, 'cases.json'));

interface WebGpuCase {
  label: string;
  kind: Kind;
  c: Case;
  /** Where the case's diffusers reference lives. */
  dir: string;
  request: () => Promise<GenerationRequest>;
  latentTolerance: number;
  pixelTolerance: number;
}

const CASES: WebGpuCase[] = [
  { label: 'txt2img', kind: 'plain', c: pick(manifest.txt2img, 'euler-bigseed'), masked: false },
  { label: 'img2img', kind: 'plain', c: pick(manifest.img2img, 'euler-s0.3'), masked: false },
  { label: 'inpaint', kind: 'inpaint', c: pick(manifest.inpaint, 'euler-a-s0.3', 'inpaint'), masked: true },
].map(({ label, kind, c, masked }) => ({ label, kind: kind as Kind, c, dir: DIR, request: () => requestFor(c, masked), latentTolerance: LATENT_TOLERANCE, pixelTolerance: 1 }));
{
  const c = pick(sdxl.txt2img, 'euler');
  // diffusers reads a plain 77-token window (test/sdxl-pipeline.test.ts).
  CASES.push({ label: 'fp16 SDXL txt2img', kind: 'fp16', c, dir: SDXL_DIR, request: async () => referenceRequest(c, { promptWeighting: 'none' }), latentTolerance: FP16_LATENT_TOLERANCE, pixelTolerance: FP16_PIXEL_TOLERANCE });
}

for (const { label, kind, c, dir, request, latentTolerance, pixelTolerance } of CASES) {
  s(`${label} (${c.name}, ${c.width}x${c.height}): WebGPU latents within ${latentTolerance} of max of the CPU's, pixels within ${pixelTolerance} levels`, async () => {
    if (!adapter()) return;
    const gpu = bundles[kind].webgpu!;
    assert.is(gpu.provider, 'webgpu');
    const kept = gpu.unet.transfers.keptOnDevice;
    const r = await both(kind, await request(), c);
    // The conditioning is uploaded once and later steps take it from the device (src/onnx/resident-inputs.ts).
    assert.ok(gpu.unet.transfers.keptOnDevice > kept, 'later steps fed the conditioning from the device');
    const latents = compare(r.webgpu.latents, r.cpu.latents);
    const reference = readF32(join(dir, c.final_latents.file));
    const diffusers = compare(r.webgpu.latents, reference);
    const cpuDiffusers = compare(r.cpu.latents, reference);
    const pixels = levels(r.webgpu.images[0]!.image.data, r.cpu.images[0]!.image.data);
    process.stdout.write(
      `\n  webgpu ${label}: latents max |Δ| ${latents.maxAbs.toExponential(2)} (${latents.relToMax.toExponential(2)} of max) vs CPU, ` +
        `${diffusers.relToMax.toExponential(2)} vs diffusers (float32; CPU: ${cpuDiffusers.relToMax.toExponential(2)}); pixels max ${pixels}/255 vs CPU\n`,
    );
    assert.ok(latents.relToMax < latentTolerance, `final latents off by ${latents.maxAbs} (${latents.relToMax} of max)`);
    assert.ok(pixels <= pixelTolerance, `pixels differ by ${pixels} levels`);
  });
}

s('the CLI says which provider ran: on the progress line and in the image (auto picks the CPU over a software adapter)', async () => {
  if (!adapter()) return;
  const dir = tempDir();
  const run = (device: string, file: string) => diffuse(['txt2img', 'a lighthouse', '--model', TINY_SD, '--seed', '1', '--steps', '1', '--device', device, '-o', join(dir, file)]);
  const gpu = run('webgpu', 'gpu.png');
  assert.is(gpu.status, 0, gpu.stderr);
  assert.match(gpu.stderr, /^sampling on webgpu: 1 steps done$/m);
  const text = readPngText(readFileSync(join(dir, 'gpu.png'))).map((c) => c.text).join('\n');
  assert.match(text, /Provider: webgpu/);
  if (!hasGpuDevice()) {
    const auto = run('auto', 'auto.png');
    assert.is(auto.status, 0, auto.stderr);
    assert.match(auto.stderr, /^sampling on cpu: 1 steps done$/m);
    assert.not.match(readPngText(readFileSync(join(dir, 'auto.png'))).map((c) => c.text).join('\n'), /Provider:/);
  }
});

s.run();
