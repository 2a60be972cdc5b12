import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MS_DOMAIN, fuseAttention } from '../src/onnx/fuse-attention.js';
import { GRAPH_INITIALIZER } from '../src/onnx/initializers.js';
import { ModelProto } from '../src/onnx/proto.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { TINY_SD } from './helpers/cli.js';
import { compare } from './helpers/fixtures.js';
import { firstOutput } from './helpers/run-graph.js';
import { normals as normals64 } from './helpers/random.js';
import { tinyRequest } from './helpers/tiny-model.js';

/**
 * Attention fusion on the tiny UNet (same block structure as SD 1.5: self-attention over the
 * latent pixels, cross-attention over 77 text tokens). The fused graph computes the same
 * products and softmax, only in another order (the scale applied once to q·k instead of its
 * square root to q and to k, blocked GEMMs, a streaming softmax): float32 rounding of ~1e-7
 * per operation, which through the whole UNet (and a whole sampling loop) stays far below
 * 1e-5 of the output's largest magnitude, the bound the end-to-end tests use against torch.
 */
const TOLERANCE = 1e-5;
const SOURCE = join(TINY_SD, 'unet/model.onnx');
const scratch = mkdtempSync(join(tmpdir(), 'diffuse-fuse-attention-'));

const original = new Uint8Array(readFileSync(SOURCE));
const fusedModel = fuseAttention(original);
const normals = (count: number, seed: number): Float32Array => Float32Array.from(normals64(count, seed));
const opCount = (model: Uint8Array, opType: string): number => ModelProto.decode(model).graph.nodes.filter((n) => n.opType === opType).length;

test('every attention block becomes one MultiHeadAttention node', () => {
  const softmaxes = opCount(original, 'Softmax');
  assert.is(softmaxes, 8, 'tiny UNet: 4 transformer blocks, self- and cross-attention each');
  assert.is(fusedModel.fused, softmaxes);
  assert.is(fusedModel.skipped, 0);
  assert.is(opCount(fusedModel.model, 'Softmax'), 0);
  assert.is(opCount(fusedModel.model, 'MultiHeadAttention'), softmaxes);
  const proto = ModelProto.decode(fusedModel.model);
  const mha = proto.graph.nodes.filter((n) => n.opType === 'MultiHeadAttention');
  // Self-attention reads q, k, v from one hidden state; cross-attention k, v from the text.
  const selfAttn = mha.find((n) => n.name.includes('/attn1/'))!;
  const crossAttn = mha.find((n) => n.name.includes('/attn2/'))!;
  assert.match(selfAttn.inputs.join(' '), /attn1\/to_q\/MatMul_output_0 .*attn1\/to_k\/MatMul_output_0 .*attn1\/to_v\/MatMul_output_0/);
  assert.match(crossAttn.inputs.join(' '), /attn2\/to_k\/MatMul_output_0/);
  assert.ok(proto.msg.messages(8).some((m) => m.string(1) === MS_DOMAIN), 'com.microsoft opset imported');
  // Only nodes went: the initialisers are byte for byte the original ones.
  const weights = (model: Uint8Array): Buffer => Buffer.concat(ModelProto.decode(model).graph.msg.all(GRAPH_INITIALIZER).map((f) => f.raw!));
  assert.ok(weights(fusedModel.model).equals(weights(original)), 'initialisers unchanged');
  assert.is(fuseAttention(fusedModel.model).fused, 0, 'a fused graph has nothing left to fuse');
});

test('an attention block off the pattern is left as it is, and counted', () => {
  const edited = ModelProto.decode(original);
  // k divided by sqrt(scale) instead of multiplied: not what SDPA exports any more.
  edited.graph.nodes.find((n) => n.name === '/mid_block/attentions.0/transformer_blocks.0/attn2/Mul_1')!.msg.setString(4, 'Div');
  const result = fuseAttention(edited.encode());
  assert.equal([result.fused, result.skipped], [7, 1]);
  const left = ModelProto.decode(result.model).graph.nodes.filter((n) => n.name.startsWith('/mid_block/attentions.0/transformer_blocks.0/attn2/'));
  assert.ok(['Softmax', 'Div', 'Transpose', 'Reshape'].every((op) => left.some((n) => n.opType === op)), 'its nodes are all still there');
});

test('fused and original UNet agree on batch 2, 16x16 latents, 77 tokens', async () => {
  const dir = join(scratch, 'unet');
  cpSync(join(TINY_SD, 'unet'), dir, { recursive: true });
  const fusedPath = join(dir, 'model.fused.onnx');
  writeFileSync(fusedPath, fusedModel.model);
  const feeds = (): Record<string, ort.Tensor> => ({
    sample: new ort.Tensor('float32', normals(2 * 4 * 16 * 16, 1), [2, 4, 16, 16]),
    timestep: new ort.Tensor('float32', Float32Array.from([981, 407]), [2]),
    encoder_hidden_states: new ort.Tensor('float32', normals(2 * 77 * 32, 2), [2, 77, 32]),
  });
  const expected = await firstOutput(join(dir, 'model.onnx'), feeds());
  const actual = await firstOutput(fusedPath, feeds());
  const { relToMax } = compare(actual, expected);
  console.log(`  unet call: max error ${relToMax.toExponential(2)} of max`);
  assert.ok(relToMax <= TOLERANCE, `${relToMax} > ${TOLERANCE}`);
});

test('generate() with the fused UNet stays with the unfused run', async () => {
  const dir = join(scratch, 'tiny-sd-fused');
  cpSync(TINY_SD, dir, { recursive: true });
  writeFileSync(join(dir, 'unet/model.onnx'), fusedModel.model);
  const request = tinyRequest({ batchSize: 2, steps: 4 });
  const latents = async (model: string): Promise<Float32Array> => {
    const bundle = await loadModel(model, { device: 'cpu', threads: 1 });
    try {
      return (await generate(bundle, request)).latents;
    } finally {
      await bundle.release();
    }
  };
  const { relToMax } = compare(await latents(dir), await latents(TINY_SD));
  console.log(`  generate: max error ${relToMax.toExponential(2)} of max`);
  assert.ok(relToMax <= TOLERANCE, `${relToMax} > ${TOLERANCE}`);
});

test.after(() => rmSync(scratch, { recursive: true, force: true }));

test('--fuse-attention through the loader: the same generation, from a cached edit', async () => {
  const graphCache = mkdtempSync(join(tmpdir(), 'diffuse-fused-'));
  const request = tinyRequest({ negativePrompt: 'dog', seed: 5 });
  const plain = await loadModel(TINY_SD, { device: 'cpu' });
  const fused = await loadModel(TINY_SD, { device: 'cpu', fuseAttention: true, graphCache });
  const [a, b] = [await generate(plain, request), await generate(fused, request)];
  await Promise.all([plain.release(), fused.release()]);
  const { relToMax } = compare(b.latents, a.latents);
  assert.ok(relToMax < 1e-5, `fused run off by ${relToMax} of max`);
  assert.ok(readdirSync(graphCache).some((d) => d.startsWith('unet-fused-attention-')), 'the edit is cached');
  rmSync(graphCache, { recursive: true, force: true });
});

test.run();
