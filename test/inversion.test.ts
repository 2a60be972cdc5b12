import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadataFile } from '../src/image/metadata.js';
import { decodeNpy, encodeNpy, NpyFormatError } from '../src/onnx/npy.js';
import { generate } from '../src/pipeline/generate.js';
import { invertImage } from '../src/pipeline/invert.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { assembleModel } from './helpers/assemble-model.js';
import { diffuse, listFiles, TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { referenceRequest, type ReferenceCase } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';

/**
 * DDIM inversion against diffusers (tools/make_inversion_refs.py on tiny-sd):
 * StableDiffusionDiffEditPipeline.invert (regularisation off, inpaint_strength 1) from the
 * picture and seed alone, and the DDIM run (StableDiffusionPipeline, latents=) that paints it back
 * from the inverted latents. Tolerance as every pipeline reference: 1e-5 of the largest latent.
 */
const LATENT_TOLERANCE = 1e-5;

interface Case extends ReferenceCase {
  inverted: { file: string; shape: number[] };
  reconstructed: { file: string };
  reconstructed_onnx: { file: string };
}

const DIR = join(FIXTURES, 'inversion');
const manifest = readJson<{ init_image: string; cases: Case[] }>(join(DIR, 'cases.json'));
const INIT = join(DIR, manifest.init_image);

const s = suite('DDIM inversion = diffusers DiffEdit.invert; txt2img from given latents = diffusers latents=');
const tmp = scratch(s);
let model: ModelBundle;
s.before(async () => {
  model = await loadModel(TINY_SD, { device: 'cpu', withEncoder: true });
});
s.after(async () => {
  await model.release();
});

for (const c of manifest.cases) {
  s(`${c.name}: invert ${c.num_inference_steps} steps at CFG ${c.guidance_scale}, then DDIM back`, async () => {
    const image = (await loadImage(INIT)).rgb;
    const bundle = { ...model, schedule: discreteSchedule(c.scheduler.config) };
    const inverted = await invertImage(bundle, referenceRequest(c, { init: { image, strength: 1, latents: 'sample' } }));
    assert.equal([...inverted.dims], c.inverted.shape);
    const invErr = compare(inverted.latents, readF32(join(DIR, c.inverted.file)));
    console.log(`  ${c.name}: inverted ${invErr.relToMax.toExponential(1)} of max`);
    assert.ok(invErr.relToMax < LATENT_TOLERANCE, `inverted latents off by ${invErr.maxAbs} (${invErr.relToMax} of max)`);

    // From diffusers' own inverted latents, so the sampling is checked on its own.
    const initialLatents = { values: readF32(join(DIR, c.inverted.file)) };
    const painted = await generate(bundle, referenceRequest(c, { initialLatents, eta: 0 }));
    const onnxErr = compare(painted.latents, readF32(join(DIR, c.reconstructed_onnx.file)));
    const torchErr = compare(painted.latents, readF32(join(DIR, c.reconstructed.file)));
    console.log(`  ${c.name}: reconstructed ${onnxErr.relToMax.toExponential(1)} of max from diffusers on the same graphs, ${torchErr.relToMax.toExponential(1)} from diffusers in torch`);
    assert.ok(onnxErr.relToMax < LATENT_TOLERANCE, `reconstructed latents off by ${onnxErr.maxAbs} (${onnxErr.relToMax} of max)`);
  });
}

s('the .npy writer writes the bytes numpy 1.26 writes; the reader takes them back', () => {
  const numpyBytes = readFileSync(join(DIR, `${manifest.cases[0]!.name}.inverted.npy`));
  const values = readF32(join(DIR, manifest.cases[0]!.inverted.file));
  const shape = manifest.cases[0]!.inverted.shape;
  assert.ok(encodeNpy(values, shape).equals(numpyBytes));
  const back = decodeNpy(numpyBytes);
  assert.equal(back.shape, shape);
  assert.equal([...back.data], [...values]);
});

s('the .npy reader refuses what it cannot read exactly', () => {
  const good = encodeNpy(Float32Array.from([1, 2, 3, 4]), [1, 4]);
  const header = (dict: string) => {
    const text = `${dict}\n`;
    const out = Buffer.alloc(10 + text.length);
    good.copy(out, 0, 0, 8);
    out.writeUInt16LE(text.length, 8);
    out.write(text, 10, 'latin1');
    return out;
  };
  const cases: [Buffer, RegExp][] = [
    [Buffer.from('hello world'), /magic/],
    [good.subarray(0, good.length - 1), /needs 16 bytes/],
    [Buffer.concat([good, Buffer.alloc(4)]), /needs 16 bytes/],
    [Buffer.concat([header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }"), Buffer.alloc(4)]), /float32 or float64/],
    [Buffer.concat([header("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }"), Buffer.alloc(8)]), /float32 or float64/],
    [Buffer.concat([header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }"), Buffer.alloc(4)]), /Fortran/],
    [header("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }"), /needs/],
    [header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1, }"), /cannot read|keys/],
    [header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"), /twice/],
    [header("__import__('os')"), /not a dict/],
  ];
  for (const [bytes, message] of cases) {
    try {
      decodeNpy(bytes);
      assert.unreachable(`read ${bytes.subarray(0, 40).toString('latin1')}`);
    } catch (err) {
      assert.instance(err, NpyFormatError);
      assert.match((err as Error).message, message);
    }
  }
});

s('CLI: invert writes the latents diffusers inverts to; txt2img --latents paints from them and records their hash', () => {
  const c = manifest.cases[0]!;
  const dir = tmp('diffuse-invert-');
  const npy = join(dir, 'house.npy');
  const inv = diffuse(['invert', c.prompt, '-i', INIT, '-m', TINY_SD, '--steps', String(c.num_inference_steps), '--seed', String(c.seed), '-o', npy, '--json', '-q']);
  assert.is(inv.status, 0, inv.stderr);
  const record = JSON.parse(inv.stdout) as { path: string; shape: number[]; cfgScale: number; seed: number };
  assert.equal(record.shape, c.inverted.shape);
  assert.is(record.cfgScale, 1);
  const written = decodeNpy(readFileSync(npy));
  const err = compare(written.data, readF32(join(DIR, c.inverted.file)));
  assert.ok(err.relToMax < LATENT_TOLERANCE, `inverted latents off by ${err.relToMax} of max`);

  const png = join(dir, 'again.png');
  const paint = diffuse(['txt2img', c.prompt, '-m', TINY_SD, '--latents', npy, '--sampler', 'ddim', '--steps', String(c.num_inference_steps), '--cfg-scale', '1', '-o', png, '-q']);
  assert.is(paint.status, 0, paint.stderr);
  const meta = readGenerationMetadataFile(png, 'test');
  assert.ok(meta.kind === 'a1111');
  assert.match(meta.kind === 'a1111' ? meta.infotext : '', /Size: 32x32/);
  assert.match(meta.kind === 'a1111' ? meta.infotext : '', /Init latents hash: [0-9a-f]{10}/);
  const from = diffuse(['txt2img', '--from', png, '-m', TINY_SD, '-o', join(dir, 'from.png')]);
  assert.is(from.status, 0, from.stderr);
  assert.match(from.stderr, /note: the image started from given latents \(file hash [0-9a-f]{10}\)/);
});

s('CLI: bad inversion and --latents input → one line, exit 2, nothing written', () => {
  const dir = tmp('diffuse-invert-bad-');
  const npy = join(dir, 'a.npy');
  writeFileSync(npy, encodeNpy(new Float32Array(4 * 16 * 16), [1, 4, 16, 16]));
  const nan = join(dir, 'nan.npy');
  writeFileSync(nan, encodeNpy(new Float32Array(4 * 16 * 16).fill(Number.NaN), [1, 4, 16, 16]));
  const wrong = join(dir, 'wrong.npy');
  writeFileSync(wrong, encodeNpy(new Float32Array(3 * 16 * 16), [1, 3, 16, 16]));
  const text = join(dir, 'text.npy');
  writeFileSync(text, 'not numpy');
  const before = listFiles(dir);
  const cases: [string[], RegExp][] = [
    [['invert', 'x', '-i', INIT, '-m', TINY_SD, '-o', join(dir, 'out.png')], /must name a \.npy file/],
    [['invert', 'x', '-i', INIT, '-m', TINY_SD, '-o', npy], /exists; pass --overwrite/],
    [['invert', 'x', '-m', TINY_SD, '-o', join(dir, 'b.npy')], /missing --init-image/],
    [['invert', 'x', '-i', INIT, '-m', TINY_SD, '--steps', '0', '-o', join(dir, 'b.npy')], /--steps must be a whole number/],
    [['txt2img', 'x', '-m', TINY_SD, '--latents', join(dir, 'a.png')], /must name a \.npy file/],
    [['txt2img', 'x', '-m', TINY_SD, '--latents', join(dir, 'missing.npy'), '-o', dir], /--latents: cannot read/],
    [['txt2img', 'x', '-m', TINY_SD, '--latents', text, '-o', dir], /not a \.npy file/],
    [['txt2img', 'x', '-m', TINY_SD, '--latents', wrong, '-o', dir], /shape \(1, 3, 16, 16\) does not fit this run; it needs \(1, 4,/],
    [['txt2img', 'x', '-m', TINY_SD, '--latents', npy, '-b', '2', '-o', dir], /does not fit this run; it needs \(2, 4,/],
    [['txt2img', 'x', '-m', TINY_SD, '--latents', npy, '-W', '64', '-o', dir], /paint 32x32, not the 64x32 asked for/],
    [['txt2img', 'x', '-m', TINY_SD, '--latents', nan, '-o', dir], /NaN or infinite/],
  ];
  for (const [args, message] of cases) {
    const r = diffuse(args);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.not.match(r.stderr, /\n\s+at /);
  }
  const inpainting = assembleModel('tiny-sd-inpaint');
  try {
    const r = diffuse(['invert', 'x', '-i', INIT, '-m', inpainting.dir, '-o', join(dir, 'b.npy')]);
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, /DDIM inversion needs a plain UNet; this model's takes 9 input channels/);
  } finally {
    inpainting.remove();
  }
  assert.equal(listFiles(dir), before);
  assert.ok(!existsSync(join(dir, 'b.npy')));
});

s.run();
