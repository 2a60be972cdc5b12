import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { intAttribute, intsAttribute } from '../src/onnx/node-builders.js';
import { initializers } from '../src/onnx/initializers.js';
import { ModelProto } from '../src/onnx/proto.js';
import { winogradConvs, type WinogradOptions } from '../src/onnx/winograd-conv.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { autoRewrites, winogradGraph, type ConvAlgorithm } from '../src/pipeline/winograd.js';
import { TINY_SD } from './helpers/cli.js';
import { compare } from './helpers/fixtures.js';
import { firstOutput } from './helpers/run-graph.js';
import { buildModel } from './helpers/onnx-build.js';
import { normals as normals64 } from './helpers/random.js';
import { scratch } from './helpers/scratch.js';
import { tinyRequest } from './helpers/tiny-model.js';

/**
 * Winograd F(2x2, 3x3) against ONNX Runtime's direct Conv on the same weights. Both are float32
 * sums of C·9 products in another order (the transforms add and subtract up to 16 terms, exact
 * up to rounding), so they differ by float32 rounding: the bound is the house's 1e-5 of the
 * output's largest magnitude, which a wrong tile position, pad or transform misses by orders of
 * magnitude (a swapped position gives errors of the order of the output itself).
 */
const TOLERANCE = 1e-5;
const normals = (count: number, seed: number): Float32Array => Float32Array.from(normals64(count, seed));

const Winograd = suite('Winograd convolution rewrite');
const temp = scratch(Winograd);

/** The model and its Winograd rewrite, written to a folder; the edit's report too. */
function rewrite(model: Uint8Array, dir: string, options?: WinogradOptions) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.onnx'), model);
  const edited = winogradConvs(model, dir, { file: 'winograd.data', staging: join(dir, 'winograd.data') }, options);
  writeFileSync(join(dir, 'winograd.onnx'), edited.model);
  return { plain: join(dir, 'model.onnx'), winograd: join(dir, 'winograd.onnx'), result: edited.result, model: edited.model };
}

function convModel(inChannels: number, outChannels: number, bias: boolean, seed: number, stride = 1): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', dims: ['n', inChannels, 'h', 'w'] }],
    outputs: [{ name: 'y', dims: ['n', outChannels, 'h', 'w'] }],
    nodes: [
      {
        op: 'Conv',
        inputs: ['x', 'w', ...(bias ? ['b'] : [])],
        outputs: ['y'],
        attrs: [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1]), intsAttribute('strides', [stride, stride]), intsAttribute('dilations', [1, 1]), intAttribute('group', 1)],
      },
    ],
    initializers: [
      { name: 'w', dims: [outChannels, inChannels, 3, 3], data: normals(outChannels * inChannels * 9, seed) },
      ...(bias ? [{ name: 'b', dims: [outChannels], data: normals(outChannels, seed + 1) }] : []),
    ],
  });
}

const shapes = [
  { n: 1, c: 16, o: 16, h: 8, w: 8, bias: true },
  { n: 2, c: 16, o: 24, h: 7, w: 9, bias: true },
  { n: 2, c: 32, o: 16, h: 5, w: 6, bias: false },
  { n: 1, c: 17, o: 19, h: 1, w: 1, bias: true },
  { n: 2, c: 16, o: 16, h: 3, w: 12, bias: true },
];

for (const [i, s] of shapes.entries()) {
  Winograd(`one Conv, batch ${s.n}, ${s.c}->${s.o} channels, ${s.h}x${s.w}${s.bias ? '' : ', no bias'}: the direct Conv's output`, async () => {
    const paths = rewrite(convModel(s.c, s.o, s.bias, 10 + i), temp('winograd-conv-'));
    assert.equal(paths.result, { rewritten: 1, skipped: 0 });
    const ops = ModelProto.decode(paths.model).graph.nodes.map((n) => n.opType);
    assert.ok(ops.includes('MatMul') && ops.filter((op) => op === 'Conv').length === 1, `the 3x3 Conv became the Winograd nodes: ${ops.join(' ')}`);
    const feeds = () => ({ x: new ort.Tensor('float32', normals(s.n * s.c * s.h * s.w, 100 + i), [s.n, s.c, s.h, s.w]) });
    const expected = await firstOutput(paths.plain, feeds());
    const actual = await firstOutput(paths.winograd, feeds());
    const { relToMax } = compare(actual, expected);
    console.log(`  ${s.n}x${s.c}x${s.h}x${s.w} -> ${s.o}: ${relToMax.toExponential(2)} of max`);
    assert.ok(relToMax <= TOLERANCE, `${relToMax} > ${TOLERANCE}`);
  });
}

Winograd('convolutions off the pattern or with few channels are left alone, and counted', () => {
  const narrow = rewrite(convModel(8, 16, true, 3), temp('winograd-narrow-'));
  assert.equal(narrow.result, { rewritten: 0, skipped: 1 });
  assert.equal(ModelProto.decode(narrow.model).graph.nodes.map((n) => n.opType), ['Conv']);
  assert.equal(rewrite(convModel(8, 16, true, 3), temp('winograd-narrow-'), { rewrites: (inChannels, outChannels) => inChannels >= 8 && outChannels >= 8 }).result, { rewritten: 1, skipped: 0 });
  assert.equal(rewrite(convModel(16, 16, true, 4, 2), temp('winograd-strided-')).result, { rewritten: 0, skipped: 1 });
});

Winograd("--conv auto: 640x320 to 1920x640 channel pairs rewritten (the direct Conv's output), a model with none loaded as it is", async () => {
  for (const [c, o, chosen] of [[320, 320, false], [640, 320, true], [320, 640, true], [1920, 640, true], [640, 1920, true], [1280, 1280, false], [2560, 1280, false], [16, 16, false]] as const) {
    assert.is(autoRewrites(c, o), chosen, `${c}->${o}`);
  }
  const cacheDir = temp('winograd-auto-cache-');
  const chosenDir = temp('winograd-auto-');
  writeFileSync(join(chosenDir, 'model.onnx'), convModel(640, 320, true, 21));
  const edited = await winogradGraph(join(chosenDir, 'model.onnx'), cacheDir, 'conv', 'auto');
  assert.equal(JSON.parse(readFileSync(join(dirname(edited), 'edit.json'), 'utf8')), { rewritten: 1, skipped: 0 });
  const feeds = () => ({ x: new ort.Tensor('float32', normals(2 * 640 * 5 * 6, 22), [2, 640, 5, 6]) });
  const { relToMax } = compare(await firstOutput(edited, feeds()), await firstOutput(join(chosenDir, 'model.onnx'), feeds()));
  console.log(`  640->320 under auto: ${relToMax.toExponential(2)} of max`);
  assert.ok(relToMax <= TOLERANCE, `${relToMax} > ${TOLERANCE}`);
  const smallDir = temp('winograd-auto-small-');
  writeFileSync(join(smallDir, 'model.onnx'), convModel(320, 320, true, 23));
  const entries = readdirSync(cacheDir);
  assert.is(await winogradGraph(join(smallDir, 'model.onnx'), cacheDir, 'conv', 'auto'), join(smallDir, 'model.onnx'));
  assert.equal(readdirSync(cacheDir), entries, 'no cache entry for a graph left as it was');
});

Winograd('the tiny UNet: every 3x3 stride-1 Conv but conv_in/conv_out rewritten, the same noise prediction', async () => {
  const dir = temp('winograd-unet-');
  cpSync(join(TINY_SD, 'unet'), dir, { recursive: true });
  const source = new Uint8Array(readFileSync(join(dir, 'model.onnx')));
  const paths = rewrite(source, dir);
  // 17 stride-1 3x3 Convs with 32 to 128 channels; conv_in (4 in) and conv_out (4 out) stay, and the downsampler is stride 2.
  assert.equal(paths.result, { rewritten: 17, skipped: 3 });
  const left = new Set(initializers(ModelProto.decode(paths.model).graph).map((i) => i.name));
  assert.not.ok(left.has('mid_block.resnets.0.conv1.weight'), 'replaced weights are dropped');
  assert.ok(left.has('conv_in.weight'), 'weights still read stay');
  const feeds = () => ({
    sample: new ort.Tensor('float32', normals(2 * 4 * 16 * 16, 1), [2, 4, 16, 16]),
    timestep: new ort.Tensor('float32', Float32Array.from([981, 407]), [2]),
    encoder_hidden_states: new ort.Tensor('float32', normals(2 * 77 * 32, 2), [2, 77, 32]),
  });
  const { relToMax } = compare(await firstOutput(paths.winograd, feeds()), await firstOutput(paths.plain, feeds()));
  console.log(`  tiny UNet: ${relToMax.toExponential(2)} of max`);
  assert.ok(relToMax <= TOLERANCE, `${relToMax} > ${TOLERANCE}`);
});

Winograd('--conv through the loader: winograd rewrites the UNet once and caches it, auto leaves the tiny one alone, the same generation', async () => {
  const graphCache = temp('winograd-cache-');
  const request = tinyRequest({ negativePrompt: 'dog', seed: 5, batchSize: 2 });
  const generateWith = async (conv: ConvAlgorithm | undefined) => {
    const bundle = await loadModel(TINY_SD, { device: 'cpu', threads: 1, fuseAttention: true, ...(conv ? { conv } : {}), graphCache });
    try {
      return await generate(bundle, request);
    } finally {
      await bundle.release();
    }
  };
  const direct = await generateWith('direct');
  // The default, auto, finds none of the tiny UNet's convolutions wide enough: the direct graph itself.
  assert.equal((await generateWith(undefined)).latents, direct.latents);
  assert.equal(readdirSync(graphCache).filter((e) => e.includes('-winograd-')), [], 'auto made no entry');
  const winograd = await generateWith('winograd');
  const entries = readdirSync(graphCache).filter((e) => e.includes('-winograd-'));
  assert.equal(entries.map((e) => e.replace(/-[0-9a-f]{24}$/, '')), ['unet-winograd'], 'the UNet only: the VAE decoder does not pay');
  assert.equal(JSON.parse(readFileSync(join(graphCache, entries[0]!, 'edit.json'), 'utf8')), { rewritten: 17, skipped: 3 });
  const { relToMax } = compare(winograd.latents, direct.latents);
  console.log(`  generate, latents: ${relToMax.toExponential(2)} of max`);
  assert.ok(relToMax <= TOLERANCE, `${relToMax} > ${TOLERANCE}`);
  for (const [i, image] of winograd.images.entries()) {
    const { maxAbs } = compare(image.image.data, direct.images[i]!.image.data);
    assert.ok(maxAbs <= 1, `image ${i}: pixels differ by ${maxAbs} levels (rounding allows 1)`);
  }
  const again = await generateWith('winograd');
  assert.equal(readdirSync(graphCache).filter((e) => e.includes('-winograd-')).sort(), entries.sort(), 'the second load reuses the cached graphs');
  assert.equal(again.latents, winograd.latents);
});

Winograd("--quantize int8-matmul's float convolutions follow --conv too; the calibrated modes' are int8 and are left alone", async () => {
  const graphCache = temp('winograd-int8-cache-');
  const request = tinyRequest({ seed: 6 });
  const generateWith = async (conv: ConvAlgorithm) => {
    const bundle = await loadModel(TINY_SD, { device: 'cpu', threads: 1, fuseAttention: true, quantize: 'int8-matmul', conv, graphCache });
    try {
      return await generate(bundle, request);
    } finally {
      await bundle.release();
    }
  };
  const direct = await generateWith('direct');
  const winograd = await generateWith('winograd');
  const entries = readdirSync(graphCache).filter((e) => e.includes('-winograd-'));
  assert.is(entries.length, 1, entries.join(', '));
  const source = JSON.parse(readFileSync(join(graphCache, entries[0]!, 'source.json'), 'utf8')).source as string;
  assert.match(source, /unet-split-projections-/, 'rewritten after the int8 edit and the projection split');
  assert.equal(JSON.parse(readFileSync(join(graphCache, entries[0]!, 'edit.json'), 'utf8')), { rewritten: 17, skipped: 3 });
  // The rewritten convolutions feed MatMuls whose activations are quantized per call: a 1e-6 change can move a rounding step.
  const { relToMax } = compare(winograd.latents, direct.latents);
  console.log(`  int8-matmul, latents: ${relToMax.toExponential(2)} of max`);
  assert.ok(relToMax <= 1e-2, `${relToMax}`);
  // int8-attention is calibrated on every CPU (int8 is int8-matmul on some: int8Mode).
  const calibratedCache = temp('winograd-int8-cache-');
  await (await loadModel(TINY_SD, { device: 'cpu', threads: 1, fuseAttention: true, quantize: 'int8-attention', conv: 'winograd', graphCache: calibratedCache })).release();
  assert.ok(readdirSync(calibratedCache).some((e) => e.startsWith('unet-int8-attention-')));
  assert.equal(readdirSync(calibratedCache).filter((e) => e.includes('-winograd-')), []);
});

Winograd.run();
