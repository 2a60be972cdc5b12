import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { intsAttribute } from '../src/onnx/node-builders.js';
import { ElemType, ModelProto } from '../src/onnx/proto.js';
import { initializers, readFloatInitializer, type InitializerInfo } from '../src/onnx/initializers.js';
import { identityModel } from '../src/onnx/probe.js';
import { INT8_FORMATS, QuantizationError, activationQuantization, quantizationTargets, quantizeInt8 } from '../src/onnx/quantize-int8.js';
import { int8Support } from '../src/onnx/cpu-features.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type ModelBundle } from '../src/pipeline/load.js';
import { int8Mode, int8Storage, quantizesDecoder } from '../src/pipeline/quantize.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { buildModel } from './helpers/onnx-build.js';
import { normals } from './helpers/random.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { assembleModel } from './helpers/assemble-model.js';
import { tinyRequest } from './helpers/tiny-model.js';
import { cpuinfoWith } from './helpers/cpuinfo.js';
import { cosine, psnr } from '../bench/metrics.js';

/**
 * --quantize int8 on the tiny fixtures. The graph rewrite is checked structurally (what became
 * int8, what stayed float, weights within half a quantization step); the pipeline is checked
 * against the float model on the same weights, seed and request, with the quality measures the
 * README states (cosine of the final latents, PSNR of the 8-bit image). The floors below sit
 * under what these fixtures measure (tiny-sd: cosine ≥ 0.958, PSNR ≥ 26 dB over seeds 11–13; the
 * random-weight tiny UNet is the worst case, its activations have no learned structure), so a
 * regression in the quantizer or the calibration fails them.
 */
const MIN_COSINE = 0.94;
const MIN_PSNR_DB = 24;

const UNET = join(TINY_SD, 'unet/model.onnx');
const source = new Uint8Array(readFileSync(UNET));

const graph = suite('int8 graph rewrite');

/** Ranges wide enough for any activation: the rewrite itself does not depend on their values. */
function wideRanges(model: Uint8Array): Map<string, { min: number; max: number }> {
  const targets = quantizationTargets(ModelProto.decode(model).graph);
  return new Map(targets.convs.flatMap((c) => [c.node.inputs[0]!, c.node.outputs[0]!]).map((a) => [a, { min: -8, max: 8 }]));
}

const quantized = quantizeInt8(source, dirname(UNET), wideRanges(source), 'u8s8');
const qGraph = ModelProto.decode(quantized.model).graph;
const ops = (opType: string) => qGraph.nodes.filter((n) => n.opType === opType);
const sourceGraph = ModelProto.decode(source).graph;
const sourceInits = new Map(initializers(sourceGraph).map((i) => [i.name, i]));
const qInits = new Map(initializers(qGraph).map((i) => [i.name, i]));

graph('every Conv between wide layers reads int8 weights; the first and last convolutions stay float', () => {
  const convs = sourceGraph.nodes.filter((n) => n.opType === 'Conv');
  assert.is(quantized.convs, convs.length - 2, 'conv_in (4 channels in) and conv_out (4 channels out) are left');
  const dqOutputs = new Map(ops('DequantizeLinear').map((n) => [n.outputs[0]!, n]));
  let floatConvs = 0;
  for (const conv of ops('Conv')) {
    const dq = dqOutputs.get(conv.inputs[1]!);
    if (!dq) {
      floatConvs++;
      assert.is(qInits.get(conv.inputs[1]!)?.elemType, ElemType.FLOAT);
      continue;
    }
    assert.is(qInits.get(dq.inputs[0]!)?.elemType, ElemType.INT8, `${conv.name} weight`);
    assert.ok(dqOutputs.has(conv.inputs[0]!), `${conv.name} input goes through Q/DQ`);
    if (conv.inputs[2]) assert.is(qInits.get(dqOutputs.get(conv.inputs[2])!.inputs[0]!)?.elemType, ElemType.INT32, `${conv.name} bias`);
  }
  assert.is(floatConvs, 2);
});

graph('every MatMul by a weight becomes DynamicQuantizeMatMul, with its bias Add folded in', () => {
  const weightMatMuls = sourceGraph.nodes.filter((n) => n.opType === 'MatMul' && sourceInits.has(n.inputs[1]!));
  assert.ok(weightMatMuls.length > 0);
  assert.is(ops('DynamicQuantizeMatMul').length, weightMatMuls.length);
  assert.is(ops('MatMul').filter((n) => qInits.has(n.inputs[1]!)).length, 0);
  const folded = ops('DynamicQuantizeMatMul').filter((n) => n.inputs[4]).length;
  assert.ok(folded > 0, 'some projections have biases');
  assert.is(ops('Add').length, sourceGraph.nodes.filter((n) => n.opType === 'Add').length - folded);
});

/** The integer weights and zero points of a rewritten graph's initialisers (raw_data, field 9), as signed values. */
function storedIntegers(inits: Map<string, InitializerInfo>, name: string): Int32Array {
  const init = inits.get(name)!;
  const raw = init.msg.first(9)!.data;
  return init.elemType === ElemType.UINT8 ? Int32Array.from(raw) : Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}

for (const format of INT8_FORMATS) {
  graph(`${format}: weights dequantize to within half a step of the originals (per output channel), on the format's grid`, () => {
    const q = format === 'u8s8' ? quantized : quantizeInt8(source, dirname(UNET), wideRanges(source), format);
    const g = ModelProto.decode(q.model).graph;
    const inits = new Map(initializers(g).map((i) => [i.name, i]));
    const dqs = g.nodes.filter((n) => n.opType === 'DequantizeLinear');
    const bound = format === 'u8s7' ? 63 : 127;
    const storedType = format === 'u8u8' ? ElemType.UINT8 : ElemType.INT8;
    let checked = 0;
    for (const conv of g.nodes.filter((n) => n.opType === 'Conv')) {
      const dq = dqs.find((n) => n.outputs[0] === conv.inputs[1]);
      if (!dq) continue;
      const originalName = dq.inputs[0]!.replace(/\/int8::q\d+$/, '');
      const original = readFloatInitializer(sourceInits.get(originalName)!, dirname(UNET));
      assert.is(inits.get(dq.inputs[0]!)!.elemType, storedType);
      const stored = storedIntegers(inits, dq.inputs[0]!);
      const zeroPoints = storedIntegers(inits, dq.inputs[2]!);
      const scales = readFloatInitializer(inits.get(dq.inputs[1]!) as InitializerInfo, '');
      // ONNX Runtime's QLinearConv takes one zero point for all channels.
      assert.ok(zeroPoints.every((z) => z === (format === 'u8u8' ? 128 : 0)), `${originalName} zero points`);
      const perChannel = original.length / scales.length;
      for (let i = 0; i < original.length; i++) {
        const c = Math.floor(i / perChannel);
        const v = stored[i]! - zeroPoints[c]!;
        assert.ok(Math.abs(v) <= bound, `${originalName}[${i}] = ${v} outside ±${bound}`);
        assert.ok(Math.abs(v * scales[c]! - original[i]!) <= scales[c]! / 2 + 1e-7, `${originalName}[${i}]`);
      }
      checked++;
    }
    assert.is(checked, q.convs);
    for (const mm of g.nodes.filter((n) => n.opType === 'DynamicQuantizeMatMul')) {
      assert.is(inits.get(mm.inputs[1]!)!.elemType, storedType);
      // uint8 weights need their zero point (128 per column); int8 ones use the default 0.
      if (format === 'u8u8') assert.ok(storedIntegers(inits, mm.inputs[3]!).every((z) => z === 128), mm.name);
      else assert.is(mm.inputs[3] ?? '', '');
    }
    assert.ok(q.model.length < source.length / 2, `${q.model.length} bytes vs ${source.length}`);
  });
}

/**
 * With AMX, wide convolutions' weights are stored one below their values with zero point -1, so
 * ONNX Runtime takes its GEMM path (AMX) instead of its symmetric kernels; narrow ones (few output
 * channels or a shallow product) stay symmetric. On three convolutions: 16 -> 320 3x3 (depth 144),
 * 320 -> 320 3x3 (the wide one), 320 -> 64 1x1. Same numbers: checked on u8s7, whose products
 * never saturate, so both kernels are exact on every x86 CPU.
 */
const WIDE = 320;
const convStack = buildModel({
  opset: 17,
  inputs: [{ name: 'x', dims: [2, 16, 6, 6] }],
  outputs: [{ name: 'out', dims: [2, 64, 6, 6] }],
  nodes: [
    { op: 'Conv', inputs: ['x', 'w0', 'b0'], outputs: ['h0'], attrs: [intsAttribute('pads', [1, 1, 1, 1])], name: 'narrow_in' },
    { op: 'Conv', inputs: ['h0', 'w1', 'b1'], outputs: ['h1'], attrs: [intsAttribute('pads', [1, 1, 1, 1])], name: 'wide' },
    { op: 'Conv', inputs: ['h1', 'w2'], outputs: ['h2'], name: 'narrow_out' },
    // A graph output's convolution stays float: the stack ends in a Relu.
    { op: 'Relu', inputs: ['h2'], outputs: ['out'] },
  ],
  initializers: [
    { name: 'w0', dims: [WIDE, 16, 3, 3], data: normals(WIDE * 16 * 9, 1).map((v) => v / 4) },
    { name: 'b0', dims: [WIDE], data: normals(WIDE, 2) },
    { name: 'w1', dims: [WIDE, WIDE, 3, 3], data: normals(WIDE * WIDE * 9, 3).map((v) => v / 30) },
    { name: 'b1', dims: [WIDE], data: normals(WIDE, 4) },
    { name: 'w2', dims: [64, WIDE, 1, 1], data: normals(64 * WIDE, 5).map((v) => v / 10) },
  ],
});

for (const format of ['u8s8', 'u8s7'] as const) {
  graph(`${format} with offset convolution weights: the wide convolution's stored one below with zero point -1, the others as before${format === 'u8s7' ? '; the same output bytes' : ''}`, async () => {
    const ranges = new Map(['x', 'h0', 'h1', 'h2'].map((a) => [a, { min: -6, max: 6 }]));
    const plain = quantizeInt8(convStack, '', ranges, format);
    const offset = quantizeInt8(convStack, '', ranges, format, { offsetConvWeights: true });
    const weights = (model: Uint8Array) => {
      const g = ModelProto.decode(model).graph;
      const inits = new Map(initializers(g).map((i) => [i.name, i]));
      const dqs = new Map(g.nodes.filter((n) => n.opType === 'DequantizeLinear').map((n) => [n.outputs[0]!, n]));
      return new Map(g.nodes.filter((n) => n.opType === 'Conv').map((conv) => {
        const dq = dqs.get(conv.inputs[1]!)!;
        return [conv.name, { stored: storedIntegers(inits, dq.inputs[0]!), zeroPoints: storedIntegers(inits, dq.inputs[2]!) }];
      }));
    };
    const [p, o] = [weights(plain.model), weights(offset.model)];
    assert.equal([...o.keys()], ['narrow_in', 'wide', 'narrow_out']);
    for (const [name, w] of o) {
      const wide = name === 'wide';
      assert.ok(w.zeroPoints.every((z) => z === (wide ? -1 : 0)), `${name} zero points`);
      assert.ok(w.stored.every((v, j) => v === p.get(name)!.stored[j]! - (wide ? 1 : 0)), `${name} weights`);
    }
    if (format === 'u8s7') {
      const run = async (model: Uint8Array) => {
        const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
        try {
          return (await session.run({ x: new ort.Tensor('float32', Float32Array.from(normals(2 * 16 * 36, 6)), [2, 16, 6, 6]) })).out!.data as Float32Array;
        } finally {
          await session.release();
        }
      };
      assert.equal(await run(offset.model), await run(plain.model));
    }
  });
}

graph('the loader offsets convolution weights only with AMX and int8 weights', () => {
  assert.equal(int8Storage({ amx: true }, 'u8s8'), { offsetConvWeights: true });
  assert.equal(int8Storage({ amx: true }, 'u8s7'), { offsetConvWeights: true });
  assert.equal(int8Storage({ amx: true }, 'u8u8'), { offsetConvWeights: false });
  assert.equal(int8Storage({ amx: false }, 'u8s8'), { offsetConvWeights: false });
  assert.equal(int8Storage({}, 'u8s8'), { offsetConvWeights: false });
});

graph('int8 runs as int8-matmul on AVX-512 without VNNI, where its int8 convolutions were slower than the float ones', () => {
  const on = (flags: string) => int8Support(cpuinfoWith(flags), 'x64');
  assert.is(int8Mode(on('avx2 fma avx512f avx512bw'), 'int8'), 'int8-matmul');
  assert.is(int8Mode(on('avx2 fma'), 'int8'), 'int8', 'AVX2 keeps its int8 convolutions (0.84x fp32 direct)');
  assert.is(int8Mode(on('avx2 fma avx512f avx512_vnni'), 'int8'), 'int8');
  assert.is(int8Mode(on('avx2 fma avx512f avx512_vnni amx_int8'), 'int8'), 'int8');
  assert.is(int8Mode(int8Support(cpuinfoWith('avx512f'), 'arm64'), 'int8'), 'int8');
  assert.is(int8Mode(int8Support(null, 'x64'), 'int8'), 'int8');
  for (const mode of ['int8-matmul', 'int8-attention'] as const) assert.is(int8Mode(on('avx2 fma avx512f avx512bw'), mode), mode, 'only int8 is chosen for');
});

graph('int8 quantizes the VAE decoder except on x86 without VNNI, where its int8 graph was slower', () => {
  assert.is(quantizesDecoder({ vnni: true }), true);
  assert.is(quantizesDecoder({ vnni: false }), false);
  assert.is(quantizesDecoder({ vnni: undefined }), true, 'ARM and unknown CPUs keep the decoder quantized');
  assert.is(quantizesDecoder(int8Support(cpuinfoWith('avx2 fma avx512f avx512bw'), 'x64')), false);
  assert.is(quantizesDecoder(int8Support(cpuinfoWith('avx2 fma avx_vnni'), 'x64')), true);
});

graph('offset convolution weights need int8 weights: u8u8 is refused', () => {
  assert.throws(() => quantizeInt8(source, dirname(UNET), wideRanges(source), 'u8u8', { offsetConvWeights: true }), (e: unknown) => e instanceof QuantizationError && /u8u8/.test((e as Error).message));
});

graph('activation grids represent zero exactly and cover the recorded range', () => {
  for (const range of [{ min: -3, max: 5 }, { min: 0.5, max: 2 }, { min: -4, max: -1 }, { min: 0, max: 0 }]) {
    const { scale, zeroPoint } = activationQuantization(range);
    assert.ok(Number.isInteger(zeroPoint) && zeroPoint >= 0 && zeroPoint <= 255);
    assert.ok((0 - zeroPoint) * scale <= Math.min(range.min, 0) + scale / 2);
    assert.ok((255 - zeroPoint) * scale >= Math.max(range.max, 0) - scale / 2);
  }
});

graph('without calibrated ranges only the MatMuls are quantized', () => {
  const matmulsOnly = quantizeInt8(source, dirname(UNET), undefined, 'u8s8');
  assert.is(matmulsOnly.convs, 0);
  assert.is(matmulsOnly.matmuls, quantized.matmuls);
  const nodes = ModelProto.decode(matmulsOnly.model).graph.nodes;
  assert.is(nodes.filter((n) => n.opType === 'QuantizeLinear').length, 0);
  assert.is(nodes.filter((n) => n.opType === 'Conv').length, sourceGraph.nodes.filter((n) => n.opType === 'Conv').length);
});

graph('a graph with nothing to quantize, or without a calibrated range, is refused', () => {
  assert.throws(() => quantizeInt8(identityModel(), '', new Map(), 'u8s8'), (e: unknown) => e instanceof QuantizationError && /float32 export/.test((e as Error).message));
  assert.throws(() => quantizeInt8(source, dirname(UNET), new Map(), 'u8s8'), (e: unknown) => e instanceof QuantizationError && /no range/.test((e as Error).message));
});

graph.run();

const pipeline = suite('int8 pipeline vs float, same weights and seed');
const cacheDir = mkdtempSync(join(tmpdir(), 'diffuse-int8-'));
let float: ModelBundle;
let int8: ModelBundle;
const notes: string[] = [];

pipeline.before(async () => {
  float = await loadModel(TINY_SD, { device: 'cpu', graphCache: cacheDir, fuseAttention: true });
  int8 = await loadModel(TINY_SD, { device: 'cpu', graphCache: cacheDir, fuseAttention: true, quantize: 'int8', onNote: (m) => notes.push(m) });
});
pipeline.after(async () => {
  await float.release();
  await int8.release();
  rmSync(cacheDir, { recursive: true, force: true });
});

async function quality(a: ModelBundle, b: ModelBundle, request: GenerationRequest): Promise<{ cos: number; db: number }> {
  const x = await generate(a, request);
  const y = await generate(b, request);
  return { cos: cosine(x.latents, y.latents), db: psnr(x.images[0]!.image.data, y.images[0]!.image.data) };
}

// On AVX-512 without VNNI --quantize int8 runs as int8-matmul (int8Mode): nothing is calibrated there.
const calibrates = int8Mode(int8Support(), 'int8') === 'int8';

pipeline('int8 runs as int8Mode chooses for this CPU, and says so where that is not int8', () => {
  assert.is(int8.quantization?.mode, int8Mode(int8Support(), 'int8'));
  assert.is(notes.some((n) => /^--quantize int8 runs as int8-matmul on this CPU/.test(n)), !calibrates, notes.join(' | '));
});

pipeline('txt2img: final latents and image close to the float model, measurably not identical', async () => {
  if (!calibrates) return;
  assert.is(notes.length, 1, 'calibration announced once');
  // Only what is quantized is calibrated: the decoder too where quantizesDecoder says so.
  assert.match(notes[0]!, quantizesDecoder(int8Support()) ? /calibrating the int8 UNet and VAE decoder \(/ : /calibrating the int8 UNet \(/);
  for (const seed of [11, 12, 13]) {
    const { cos, db } = await quality(float, int8, tinyRequest({ seed, steps: 8 }));
    assert.ok(cos >= MIN_COSINE && cos < 0.999999, `seed ${seed}: cosine ${cos}`);
    assert.ok(db >= MIN_PSNR_DB, `seed ${seed}: PSNR ${db.toFixed(2)} dB`);
  }
});

pipeline('the calibration graphs are gone; a second load reuses the int8 graphs without calibrating', async () => {
  if (!calibrates) return;
  const entries = readdirSync(cacheDir);
  assert.ok(entries.some((e) => e.startsWith('unet-int8-')), entries.join(', '));
  // The decoder is quantized only where its int8 graph pays (quantizesDecoder): with VNNI, not without.
  assert.is(entries.some((e) => e.startsWith('vae-decoder-int8-')), quantizesDecoder(int8Support()), entries.join(', '));
  assert.not.ok(entries.some((e) => e.includes('calibration')), entries.join(', '));
  const again = await loadModel(TINY_SD, { device: 'cpu', graphCache: cacheDir, fuseAttention: true, quantize: 'int8', onNote: (m) => notes.push(m) });
  try {
    assert.is(notes.length, 1, 'no second calibration');
    const request = tinyRequest({ seed: 5 });
    assert.equal((await generate(again, request)).latents, (await generate(int8, request)).latents);
  } finally {
    await again.release();
  }
});

pipeline('calibration is deterministic: a fresh cache builds byte-identical int8 graphs', async () => {
  if (!calibrates) return;
  const other = mkdtempSync(join(tmpdir(), 'diffuse-int8-'));
  try {
    const again = await loadModel(TINY_SD, { device: 'cpu', graphCache: other, fuseAttention: true, quantize: 'int8' });
    await again.release();
    for (const prefix of ['unet-int8-', ...(quantizesDecoder(int8Support()) ? ['vae-decoder-int8-'] : [])]) {
      const a = readdirSync(cacheDir).find((e) => e.startsWith(prefix))!;
      const b = readdirSync(other).find((e) => e.startsWith(prefix))!;
      assert.ok(readFileSync(join(cacheDir, a, 'model.onnx')).equals(readFileSync(join(other, b, 'model.onnx'))), prefix);
    }
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

pipeline('int8-matmul: no calibration, the VAE as exported, and near-lossless', async () => {
  const cache = mkdtempSync(join(tmpdir(), 'diffuse-int8-'));
  const said: string[] = [];
  const q = await loadModel(TINY_SD, { device: 'cpu', graphCache: cache, fuseAttention: true, quantize: 'int8-matmul', onNote: (m) => said.push(m) });
  try {
    assert.equal(said, []);
    // No calibration graphs, no VAE decoder: the int8 UNet, and that split per projection (split-projections.ts).
    assert.equal(readdirSync(cache).filter((e) => !e.startsWith('unet-fused-attention-')).map((e) => e.replace(/-[0-9a-f]+$/, '')), ['unet-int8-matmul', 'unet-split-projections']);
    // Measured 0.99997 (cosine) and 53.5 dB here: only the MatMul activations are rounded, per call.
    const { cos, db } = await quality(float, q, tinyRequest({ seed: 11, steps: 8 }));
    assert.ok(cos >= 0.9999 && cos < 1, `cosine ${cos}`);
    assert.ok(db >= 45, `PSNR ${db.toFixed(2)} dB`);
  } finally {
    await q.release();
    rmSync(cache, { recursive: true, force: true });
  }
});

pipeline('int8-matmul per weight format: u8u8 and u8s7 exact everywhere; u8s8 saturates exactly where this CPU lacks VNNI', async () => {
  // Measured on an AVX2 EPYC without VNNI, seed 11: u8s8 0.99580, u8u8 0.99997, u8s7 0.99996 (cosine to float).
  const cache = mkdtempSync(join(tmpdir(), 'diffuse-int8-'));
  const support = int8Support();
  const request = tinyRequest({ seed: 11, steps: 8 });
  const reference = await generate(float, request);
  const latents: Record<string, Float32Array> = {};
  try {
    for (const format of INT8_FORMATS) {
      const q = await loadModel(TINY_SD, { device: 'cpu', graphCache: cache, fuseAttention: true, quantize: 'int8-matmul', int8Format: format });
      try {
        assert.equal(q.quantization, { mode: 'int8-matmul', format });
        latents[format] = (await generate(q, request)).latents;
      } finally {
        await q.release();
      }
    }
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  for (const format of ['u8u8', 'u8s7'] as const) {
    const cos = cosine(reference.latents, latents[format]!);
    assert.ok(cos >= 0.9999, `${format}: cosine ${cos}`);
  }
  const s8 = cosine(reference.latents, latents.u8s8!);
  if (process.arch === 'x64' && support.vnni === false) {
    // vpmaddubsw adds u8·s8 pairs into 16 bits with saturation (AVX2, AVX-512 without VNNI).
    assert.ok(s8 < 0.999, `u8s8 without VNNI: cosine ${s8}, expected the saturation's loss`);
  } else if (support.vnni === true) {
    // VNNI's products accumulate in 32 bits: the same integer sums as u8u8's.
    const same = cosine(latents.u8s8!, latents.u8u8!);
    assert.ok(same >= 0.999999, `u8s8 vs u8u8 with VNNI: cosine ${same}`);
  } else {
    assert.ok(s8 >= 0.9999, `u8s8 on ${process.arch}: cosine ${s8}`);
  }
});

for (const fixture of ['tiny-lcm', 'tiny-sd-inpaint', 'tiny-sd-depth'] as const) {
  pipeline(`${fixture}: calibrates with its own sampling and inputs, and stays close to float`, async () => {
    const model = assembleModel(fixture);
    const cache = mkdtempSync(join(tmpdir(), 'diffuse-int8-'));
    try {
      const f = await loadModel(model.dir, { device: 'cpu', graphCache: cache, withEncoder: true });
      const q = await loadModel(model.dir, { device: 'cpu', graphCache: cache, withEncoder: true, quantize: 'int8' });
      try {
        const request =
          fixture === 'tiny-lcm'
            ? tinyRequest({ sampler: 'lcm', schedule: 'normal', steps: 4, cfgScale: 8 })
            : fixture === 'tiny-sd-inpaint'
              ? tinyRequest(calibrationLikeInpaint())
              : tinyRequest({ init: calibrationLikeInpaint().init!, depth: { values: Float32Array.from({ length: 64 }, (_, i) => i % 8), width: 8, height: 8 } });
        const { cos } = await quality(f, q, request);
        assert.ok(cos >= MIN_COSINE, `cosine ${cos}`);
      } finally {
        await f.release();
        await q.release();
      }
    } finally {
      rmSync(cache, { recursive: true, force: true });
      model.remove();
    }
  });
}

/** A 32x32 gradient with its middle masked, as an inpainting request. */
function calibrationLikeInpaint(): Partial<GenerationRequest> {
  const size = 32;
  const data = new Uint8Array(size * size * 3);
  const values = new Float32Array(size * size);
  for (let i = 0; i < size * size; i++) {
    const x = i % size;
    const y = Math.floor(i / size);
    data.set([x * 8, y * 8, 100], i * 3);
    values[i] = x >= 8 && x < 24 && y >= 8 && y < 24 ? 1 : 0;
  }
  return { init: { image: { width: size, height: size, channels: 3, data }, strength: 1, latents: 'sample' }, mask: { values } };
}

pipeline.run();

const cli = suite('--quantize on the command line');

cli('the image records Quantization: int8; an unknown mode is a usage error', () => {
  const dir = tempDir();
  const out = join(dir, 'q.png');
  const ok = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--quantize', 'int8', '--steps', '2', '-o', out, '--quiet']);
  assert.is(ok.status, 0, ok.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.is(meta.kind, 'a1111');
  // What ran: int8-matmul on AVX-512 without VNNI (int8Mode).
  if (meta.kind === 'a1111') assert.is(meta.parameters.extra.Quantization, `${int8Mode(int8Support(), 'int8')} (${int8Support().format})`);
  const bad = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--quantize', 'int4', '-o', join(dir, 'bad.png')]);
  assert.is(bad.status, 2);
  assert.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /--quantize/);
  assert.not.ok(readdirSync(dir).includes('bad.png'));
});

cli.run();

const formatCli = suite('--int8-format on the command line');

formatCli('a chosen format is recorded, --from restores u8s7 (it rounds differently) and leaves the exact formats to the CPU', () => {
  const dir = tempDir();
  const first = join(dir, 's7.png');
  const run = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--quantize', 'int8-matmul', '--int8-format', 'u8s7', '--steps', '2', '--seed', '3', '-o', first, '--quiet']);
  assert.is(run.status, 0, run.stderr);
  const quantization = (file: string): string | undefined => {
    const meta = readGenerationMetadata(readFileSync(file));
    return meta.kind === 'a1111' ? meta.parameters.extra.Quantization : undefined;
  };
  assert.is(quantization(first), 'int8-matmul (u8s7)');
  const again = join(dir, 'again.png');
  const rerun = diffuse(['txt2img', '--from', first, '--model', TINY_SD, '-o', again, '--quiet']);
  assert.is(rerun.status, 0, rerun.stderr);
  assert.is(quantization(again), 'int8-matmul (u8s7)');
  assert.ok(readFileSync(again).equals(readFileSync(first)), 'the same settings make the same file');
  const exact = join(dir, 'exact.png');
  assert.is(diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--quantize', 'int8-matmul', '--int8-format', 'u8u8', '--steps', '2', '-o', exact, '--quiet']).status, 0);
  const fromExact = join(dir, 'from-exact.png');
  assert.is(diffuse(['txt2img', '--from', exact, '--model', TINY_SD, '-o', fromExact, '--quiet']).status, 0);
  assert.is(quantization(fromExact), `int8-matmul (${int8Support().format})`);
  const bad = diffuse(['txt2img', 'a fox', '--model', TINY_SD, '--quantize', 'int8', '--int8-format', 'u4', '-o', join(dir, 'bad.png')]);
  assert.is(bad.status, 2);
  assert.is(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /--int8-format/);
});

formatCli.run();
