import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import type { Raster } from '../src/image/raster.js';
import { haarDwt2, haarIdwt2 } from '../src/image/watermark/haar.js';
import { WatermarkImageTooSmallError, embedWatermark, readWatermark } from '../src/image/watermark/dwt-dct.js';
import { detectWatermark } from '../src/image/watermark/detect.js';
import { comparePayload } from '../src/image/watermark/match.js';
import { type ChannelOrder, fromYuv, toYuv } from '../src/image/watermark/opencv-yuv.js';
import { SDXL_WATERMARK_BITS, bitString, bitsFromString, bitsFromText, textFromBits } from '../src/image/watermark/payload.js';
import { everyColour } from './helpers/every-colour.js';

// References from tools/make_watermark_refs.py: invisible-watermark 0.2.0's WatermarkEncoder/Decoder
// ("dwtDct") with OpenCV 4.11 and PyWavelets 1.8 on three images (256x256; 261x253, odd; 262x254, not a
// multiple of the 4-pixel region), called as CompVis/Stability do (RGB converted to BGR) and as diffusers'
// SDXL watermarker does (RGB handed over as it is). Tolerance: none (bit exact, float64 bands included).
const fixture = (name: string): Buffer => readFileSync(new URL(`../../test/fixtures/watermark/${name}`, import.meta.url));

interface Case {
  name: string;
  width: number;
  height: number;
  order: ChannelOrder;
  kind: 'bits' | 'bytes';
  text: string | null;
  bits: string;
  input: string;
  output: string;
  changedSamples: number;
  decodedOutput: string;
  decodedUnmarked: string;
  decodedOtherOrder: string;
}
const refs = JSON.parse(fixture('refs.json').toString('utf8')) as {
  cases: Case[];
  haar: { file: string; width: number; height: number; offsets: Record<string, number> };
  yuv: { bgr2yuv: string; yuv2bgr: string };
};

const png = async (name: string): Promise<Raster> => (await loadImage(fixture(name), { alpha: 'drop' })).rgb;

function firstMismatch(actual: Uint8Array, expected: Uint8Array): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length} vs ${expected.length}`;
  const i = actual.findIndex((v, k) => v !== expected[k]);
  return i < 0 ? undefined : `sample ${i} (pixel ${Math.floor(i / 3)}): ${actual[i]} != ${expected[i]}`;
}

test("OpenCV's 8-bit BGR2YUV and YUV2BGR, all 2^24 inputs each", () => {
  const triples = everyColour();
  // 'rgb' hands the bytes to OpenCV unchanged: the first byte is its blue, as in the fixture's BGR image
  const planes = toYuv(triples, 'rgb');
  const yuv = new Uint8Array(triples.data.length);
  for (let i = 0; i < planes.y.length; i++) {
    yuv[3 * i] = planes.y[i]!;
    yuv[3 * i + 1] = planes.u[i]!;
    yuv[3 * i + 2] = planes.v[i]!;
  }
  assert.is(createHash('sha256').update(yuv).digest('hex'), refs.yuv.bgr2yuv);
  // every triple read as (Y, U, V)
  const n = 1 << 24;
  const asYuv = { width: 4096, height: 4096, y: new Uint8Array(n), u: new Uint8Array(n), v: new Uint8Array(n) };
  for (let i = 0; i < n; i++) {
    asYuv.y[i] = triples.data[3 * i]!;
    asYuv.u[i] = triples.data[3 * i + 1]!;
    asYuv.v[i] = triples.data[3 * i + 2]!;
  }
  fromYuv(asYuv, 'rgb', triples);
  assert.is(createHash('sha256').update(triples.data).digest('hex'), refs.yuv.yuv2bgr);
});

test('Haar dwt2 and the swapped idwt2 give pywt’s float64 values exactly', () => {
  const { width, height, offsets } = refs.haar;
  const raw = fixture(refs.haar.file);
  const f64 = (key: string, n: number): Float64Array => new Float64Array(raw.buffer.slice(raw.byteOffset + offsets[key]!, raw.byteOffset + offsets[key]! + 8 * n));
  const plane = raw.subarray(offsets.plane!, offsets.plane! + width * height);
  const bands = haarDwt2(plane, width, width, height);
  const n = (width / 2) * (height / 2);
  assert.equal([...bands.horizontal], [...f64('h', n)], 'cH');
  assert.equal([...bands.vertical], [...f64('v', n)], 'cV');
  assert.equal([...bands.diagonal], [...f64('d', n)], 'cD');
  // the reference edits cA before the inverse, as the embedding does; the library passes (cV, cH, cD)
  const inverse = haarIdwt2({ ...bands, approx: f64('a', n), horizontal: bands.vertical, vertical: bands.horizontal });
  assert.equal([...inverse], [...f64('swappedInverse', width * height)]);
});

test('the SDXL payload and text payloads are the library’s bits', () => {
  const sdxl = refs.cases.find((c) => c.name.startsWith('sdxl'))!;
  assert.is(bitString(SDXL_WATERMARK_BITS), sdxl.bits);
  const text = refs.cases.find((c) => c.kind === 'bytes')!;
  assert.is(bitString(bitsFromText(text.text!)), text.bits);
  assert.is(textFromBits(bitsFromText('ünïcode ✓')), 'ünïcode ✓');
  assert.is(textFromBits(bitsFromString('1111111111111111')), null, 'not UTF-8');
  assert.is(textFromBits(bitsFromString('0101')), null, 'not whole bytes');
  assert.throws(() => bitsFromString('01a'), RangeError);
});

for (const c of refs.cases) {
  test(`${c.name}: embedding gives the library's bytes (${c.order} order)`, async () => {
    const input = await png(c.input);
    const expected = await png(c.output);
    const marked = embedWatermark(input, bitsFromString(c.bits), { channelOrder: c.order });
    assert.is(firstMismatch(marked.data, expected.data), undefined);
    assert.is(firstMismatch(input.data, (await png(c.input)).data), undefined, 'the input is not modified');
  });

  test(`${c.name}: reading gives the library's bits, marked or not, in either order`, async () => {
    const other: ChannelOrder = c.order === 'bgr' ? 'rgb' : 'bgr';
    const n = c.bits.length;
    assert.is(bitString(readWatermark(await png(c.output), n, { channelOrder: c.order })), c.decodedOutput);
    assert.is(bitString(readWatermark(await png(c.input), n, { channelOrder: c.order })), c.decodedUnmarked);
    assert.is(bitString(readWatermark(await png(c.output), n, { channelOrder: other })), c.decodedOtherOrder);
  });

  test(`${c.name}: detection finds the payload in the marked image only`, async () => {
    const bits = bitsFromString(c.bits);
    const marked = detectWatermark(await png(c.output), bits);
    assert.ok(marked.matches, `${marked.matchedBits}/${marked.totalBits}, chance ${marked.chance}`);
    assert.is(marked.channelOrder, c.order);
    const unmarked = detectWatermark(await png(c.input), bits);
    assert.not.ok(unmarked.matches, `${unmarked.matchedBits}/${unmarked.totalBits}, chance ${unmarked.chance}`);
  });
}

test('a match needs agreement chance would reach less than once in 1000 tries (36 of 48 bits)', () => {
  const expected = [...SDXL_WATERMARK_BITS];
  const flip = (k: number) => expected.map((b, i) => (i < k ? 1 - b : b) as 0 | 1);
  assert.ok(comparePayload(flip(12), expected).matches, '36 of 48');
  assert.not.ok(comparePayload(flip(13), expected).matches, '35 of 48');
  assert.ok(comparePayload(flip(12), expected, 2).matches, '36 of 48 over two readings');
  const all = comparePayload(expected, expected);
  assert.is(all.matchedBits, 48);
  assert.ok(all.chance > 0 && all.chance < 1e-14, `${all.chance}`);
  assert.is(comparePayload(flip(24), expected).chance, comparePayload(flip(24), expected).chance);
  assert.not.ok(comparePayload([1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]).matches, '8 bits can never rule out chance');
});

test('alpha is kept; images under 256x256 pixels are refused as the library does', async () => {
  const rgb = await png(refs.cases[0]!.input);
  const rgba: Raster = { width: rgb.width, height: rgb.height, channels: 4, data: new Uint8Array(rgb.width * rgb.height * 4) };
  for (let i = 0; i < rgb.width * rgb.height; i++) {
    rgba.data.set(rgb.data.subarray(3 * i, 3 * i + 3), 4 * i);
    rgba.data[4 * i + 3] = i % 251;
  }
  const marked = embedWatermark(rgba);
  const markedRgb = embedWatermark(rgb);
  for (let i = 0; i < rgb.width * rgb.height; i++) {
    assert.is(marked.data[4 * i + 3], i % 251);
    for (let c = 0; c < 3; c++) if (marked.data[4 * i + c] !== markedRgb.data[3 * i + c]) assert.unreachable(`pixel ${i}`);
  }
  const small: Raster = { width: 255, height: 256, channels: 3, data: new Uint8Array(255 * 256 * 3) };
  assert.throws(() => embedWatermark(small), (e: unknown) => e instanceof WatermarkImageTooSmallError && e.exitCode === 2);
  assert.throws(() => readWatermark(small, 48), (e: unknown) => e instanceof WatermarkImageTooSmallError);
});

test.run();
