import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rasterToTensor, tensorToRasters } from '../src/image/tensor-image.js';

// References from tools/make_image_refs.py: diffusers VaeImageProcessor.postprocess / preprocess themselves,
// and the A1111 == ComfyUI conversion. The input covers every rounding and truncation boundary (each
// k/255 and (k+0.5)/255 point with its float32 neighbours), NaN, infinities and out-of-range values.
// Tolerance: none. These are the bytes written to disk and the tensors fed to the VAE.
const fixture = (name: string): Buffer => readFileSync(new URL(`../../test/fixtures/image/${name}`, import.meta.url));
const refs = JSON.parse(fixture('refs.json').toString('utf8')) as {
  postprocess: { input: string; shape: [number, number, number, number]; diffusers: string; a1111: string };
  preprocess: { input: string; inputShape: [number, number, number]; output: string; outputShape: number[] };
};
const f32 = (buf: Buffer): Float32Array => new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));

const input = f32(fixture(refs.postprocess.input));
const dims = refs.postprocess.shape;

function mismatches(actual: Uint8Array, expected: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) n++;
  return n;
}

test('VAE output -> uint8 matches diffusers postprocess byte for byte', () => {
  const [img] = tensorToRasters(input, dims, 'diffusers');
  assert.is(img!.channels, 3);
  assert.is(mismatches(img!.data, fixture(refs.postprocess.diffusers)), 0);
});

test('VAE output -> uint8 matches A1111 and ComfyUI (truncation) byte for byte', () => {
  const expected = fixture(refs.postprocess.a1111);
  assert.is(mismatches(tensorToRasters(input, dims, 'a1111')[0]!.data, expected), 0);
  assert.is(mismatches(tensorToRasters(input, dims, 'comfyui')[0]!.data, expected), 0);
  // The conventions really differ: this is why the convention is a parameter.
  assert.ok(mismatches(tensorToRasters(input, dims, 'diffusers')[0]!.data, expected) > 1000);
});

test('batches split per image; wrong shapes are rejected', () => {
  const [n, c, h, w] = dims;
  const two = new Float32Array(input.length * 2);
  two.set(input);
  two.set(input.map((v) => -v), input.length);
  const out = tensorToRasters(two, [2 * n, c, h, w]);
  assert.is(out.length, 2);
  assert.equal(out[0]!.data, tensorToRasters(input, dims)[0]!.data);
  assert.equal(out[1]!.data, tensorToRasters(input.map((v) => -v), dims)[0]!.data);
  assert.throws(() => tensorToRasters(input, [1, 2, h, w * 1.5]), RangeError);
  assert.throws(() => tensorToRasters(input, [1, c, h, w + 1]), RangeError);
});

test('uint8 -> VAE input matches diffusers preprocess bit for bit', () => {
  const [h, w, c] = refs.preprocess.inputShape;
  const data = new Uint8Array(fixture(refs.preprocess.input));
  const actual = rasterToTensor({ width: w, height: h, channels: c as 3, data });
  const expected = f32(fixture(refs.preprocess.output));
  assert.is(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.unreachable(`index ${i}: ${actual[i]} != ${expected[i]}`);
  }
  // Written at an offset into a batch tensor.
  const batch = new Float32Array(expected.length * 2);
  rasterToTensor({ width: w, height: h, channels: 3, data }, batch, expected.length);
  assert.equal(batch.subarray(expected.length), expected);
});

test.run();
