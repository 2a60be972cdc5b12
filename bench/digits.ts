/**
 * Judging tiny-digits' pictures: the digit classifier (assets/tiny-digits-classifier.onnx, made by
 * tools/make_digits_classifier.py), the held-out real digits it is scored on, and a Fréchet
 * distance between the classifier's penultimate features of two image sets (FID's formula on a
 * 32-feature digit network instead of Inception). Shared by bench:digits and test/digits-model.test.ts.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import type { Raster } from '../src/image/raster.js';

const ROOT = new URL('../../', import.meta.url);
export const DIGITS_MODEL = new URL('assets/tiny-digits', ROOT).pathname;
const CLASSIFIER = new URL('assets/tiny-digits-classifier.onnx', ROOT).pathname;
const HELD_OUT = new URL('test/fixtures/digits/held-out.bin.gz', ROOT).pathname;

export const DIGIT_SIZE = 32;
export const FEATURES = 32;
const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** The prompt the model was trained with for a digit (tools/digits_data.py). */
export function digitPrompt(digit: number): string {
  return `a handwritten digit ${WORDS[digit]}`;
}

export interface Judged {
  /** The classifier's digit per image. */
  labels: number[];
  /** [images, FEATURES] penultimate activations. */
  features: Float32Array;
}

export interface DigitClassifier {
  judge(images: readonly Raster[]): Promise<Judged>;
  release(): Promise<void>;
}

export async function loadDigitClassifier(): Promise<DigitClassifier> {
  const session = await ort.InferenceSession.create(CLASSIFIER, { intraOpNumThreads: 1 });
  return {
    async judge(images) {
      const pixels = DIGIT_SIZE * DIGIT_SIZE;
      const input = new Float32Array(images.length * 3 * pixels);
      images.forEach((raster, n) => {
        if (raster.width !== DIGIT_SIZE || raster.height !== DIGIT_SIZE) throw new Error(`digit images are ${DIGIT_SIZE}x${DIGIT_SIZE}, not ${raster.width}x${raster.height}`);
        for (let p = 0; p < pixels; p++) {
          for (let c = 0; c < 3; c++) input[(n * 3 + c) * pixels + p] = raster.data[p * raster.channels + (raster.channels < 3 ? 0 : c)]! / 255;
        }
      });
      const out = await session.run({ image: new ort.Tensor('float32', input, [images.length, 3, DIGIT_SIZE, DIGIT_SIZE]) });
      const logits = out['logits']!.data as Float32Array;
      const labels = images.map((_, n) => argmax(logits.subarray(n * 10, n * 10 + 10)));
      return { labels, features: out['features']!.data as Float32Array };
    },
    release: () => session.release(),
  };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The 360 digits no model here was trained on, as grey 32x32 rasters with their labels. */
export function readHeldOutDigits(): { images: Raster[]; labels: number[] } {
  const bytes = gunzipSync(readFileSync(HELD_OUT));
  const row = 1 + DIGIT_SIZE * DIGIT_SIZE;
  const images: Raster[] = [];
  const labels: number[] = [];
  for (let at = 0; at < bytes.length; at += row) {
    labels.push(bytes[at]!);
    images.push({ width: DIGIT_SIZE, height: DIGIT_SIZE, channels: 1, data: bytes.subarray(at + 1, at + row) });
  }
  return { images, labels };
}

/** Mean and covariance (n-1 denominator, as numpy's cov) of [n, d] rows. */
function moments(rows: Float32Array, d: number): { mean: Float64Array; cov: Float64Array } {
  const n = rows.length / d;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += rows[i * d + j]! / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      const da = rows[i * d + a]! - mean[a]!;
      for (let b = 0; b < d; b++) cov[a * d + b]! += (da * (rows[i * d + b]! - mean[b]!)) / (n - 1);
    }
  }
  return { mean, cov };
}

function multiply(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) for (let j = 0; j < d; j++) out[i * d + j]! += a[i * d + k]! * b[k * d + j]!;
  return out;
}

/**
 * FID's ‖μ₁−μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½) over [n, FEATURES] feature rows. Tr((Σ₁Σ₂)^½) is the sum
 * of the square roots of Σ₁Σ₂'s eigenvalues, which are those of the symmetric Σ₁^½Σ₂Σ₁^½.
 */
export function frechetDistance(a: Float32Array, b: Float32Array, d: number = FEATURES): number {
  const x = moments(a, d);
  const y = moments(b, d);
  const sqrtX = symmetricSqrt(x.cov, d);
  const product = multiply(multiply(sqrtX, y.cov, d), sqrtX, d);
  const traceSqrt = eigenSystem(product, d).values.reduce((sum, v) => sum + Math.sqrt(Math.max(v, 0)), 0);
  let distance = -2 * traceSqrt;
  for (let i = 0; i < d; i++) distance += (x.mean[i]! - y.mean[i]!) ** 2 + x.cov[i * d + i]! + y.cov[i * d + i]!;
  return Math.max(distance, 0);
}

/** Σ^½ of a symmetric positive semi-definite matrix, by Jacobi with the rotations accumulated. */
function symmetricSqrt(matrix: Float64Array, d: number): Float64Array {
  const { values, vectors } = eigenSystem(matrix, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const root = Math.sqrt(Math.max(values[k]!, 0));
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) out[i * d + j]! += vectors[i * d + k]! * root * vectors[j * d + k]!;
  }
  return out;
}

/** Eigenvalues and eigenvectors (columns) of a symmetric matrix by cyclic Jacobi rotations; d is 32 here. */
export function eigenSystem(matrix: Float64Array, d: number): { values: number[]; vectors: Float64Array } {
  const m = Float64Array.from(matrix);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += m[p * d + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p * d + q]!;
        if (apq === 0) continue;
        const theta = (m[q * d + q]! - m[p * d + p]!) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // M <- JᵀMJ (columns, then rows), V <- VJ.
        for (let k = 0; k < d; k++) rotatePair(m, k * d + p, k * d + q, c, s);
        for (let k = 0; k < d; k++) rotatePair(m, p * d + k, q * d + k, c, s);
        for (let k = 0; k < d; k++) rotatePair(v, k * d + p, k * d + q, c, s);
      }
    }
  }
  return { values: Array.from({ length: d }, (_, i) => m[i * d + i]!), vectors: v };
}

function rotatePair(a: Float64Array, i: number, j: number, c: number, s: number): void {
  const ai = a[i]!;
  const aj = a[j]!;
  a[i] = c * ai - s * aj;
  a[j] = s * ai + c * aj;
}
