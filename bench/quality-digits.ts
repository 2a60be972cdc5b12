/**
 * What each speed option costs on a trained model: tiny-digits (assets/tiny-digits, trained here on
 * scikit-learn's digits by tools/make_digits_model.py) draws K images of every digit per option, and
 * the digit classifier (bench/digits.ts) says how many show the digit asked for and how far their
 * features sit from real held-out digits (Fréchet distance; FID's formula on the classifier's 32
 * features). Same prompts, seeds and sampler for every option. Writes bench/results/digits-<date>.{json,md}.
 *
 *   npm run bench:digits -- [--per-digit 50] [--steps 20] [--cfg 3] [--seed 100] [--only fp32,int8] [--no-write]
 *
 * A new option is one line in OPTIONS: its label, the command-line flags it stands for, and the
 * load options and request fields those flags set.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type LoadOptions } from '../src/pipeline/load.js';
import type { GenerationRequest } from '../src/pipeline/types.js';
import type { Raster } from '../src/image/raster.js';
import { cpuLine, describeCpu } from './cpu.js';
import { psnr } from './metrics.js';
import { DEEP_CACHE_ROWS } from './peers.js';
import { DIGITS_MODEL, DIGIT_SIZE, digitPrompt, frechetDistance, loadDigitClassifier, readHeldOutDigits, type DigitClassifier } from './digits.js';

export interface SpeedOption {
  label: string;
  /** What a user types for it. */
  flags: string;
  load?: Partial<LoadOptions>;
  request?: Partial<GenerationRequest>;
}

/**
 * `--vae taesd` has no row: TAESD decodes SD's own latent space, and tiny-digits has its own
 * (8x8x4 latents from its own VAE), so TAESD would draw noise here, not a cheaper digit.
 */
export const OPTIONS: SpeedOption[] = [
  { label: 'fp32', flags: '(defaults)' },
  { label: 'int8', flags: '--quantize int8', load: { quantize: 'int8' } },
  { label: 'int8 u8s8', flags: '--quantize int8 --int8-format u8s8', load: { quantize: 'int8', int8Format: 'u8s8' } },
  { label: 'int8 u8s7', flags: '--quantize int8 --int8-format u8s7', load: { quantize: 'int8', int8Format: 'u8s7' } },
  { label: 'int8-matmul', flags: '--quantize int8-matmul', load: { quantize: 'int8-matmul' } },
  { label: 'int8-attention', flags: '--quantize int8-attention', load: { quantize: 'int8-attention' } },
  { label: 'half the steps', flags: '--steps 10', request: { steps: 10 } },
  ...DEEP_CACHE_ROWS.map((n) => ({ label: `deep cache ${n}`, flags: `--deep-cache ${n}`, load: { deepCache: true }, request: { deepCache: n } })),
  // The bench's 'diffuse fast' row without its TAESD decode (see below): int8 and DeepCache together.
  { label: 'int8 + deep cache 3', flags: '--quantize int8 --deep-cache 3', load: { quantize: 'int8', deepCache: true }, request: { deepCache: 3 } },
];

export interface DigitsRow {
  option: string;
  flags: string;
  images: number;
  /** Images the classifier reads as the digit asked for. */
  correct: number;
  accuracy: number;
  /** Per digit 0-9: how many of its images were read right. */
  perDigit: number[];
  frechet: number;
  /** Against the fp32 row's images of the same seeds (absent in the fp32 row): Fréchet distance of the features, mean PSNR of the pixels. */
  frechetToFp32?: number;
  psnrToFp32Db?: number;
  secondsPerImage: number;
  loadSeconds: number;
}

export interface DigitsSettings {
  perDigit: number;
  steps: number;
  cfg: number;
  seed: number;
}

function request(settings: DigitsSettings, digit: number, option: SpeedOption): GenerationRequest {
  return {
    prompt: digitPrompt(digit),
    negativePrompt: '',
    steps: settings.steps,
    cfgScale: settings.cfg,
    cfgRescale: 0,
    // One seed run per digit, so digit d's images are seeds seed+10d .. seed+10d+K-1 whatever the option.
    seed: settings.seed + digit * settings.perDigit,
    rng: 'cpu',
    seedMode: 'a1111',
    sampler: 'euler',
    schedule: 'normal',
    width: DIGIT_SIZE,
    height: DIGIT_SIZE,
    batchSize: settings.perDigit,
    ...option.request,
  };
}

export interface DigitsRun {
  row: DigitsRow;
  images: Raster[];
  features: Float32Array;
}

/** Draws K images of each digit with one option and judges them against the held-out real digits. */
export async function measureOption(option: SpeedOption, settings: DigitsSettings, classifier: DigitClassifier, realFeatures: Float32Array, cache: string): Promise<DigitsRun> {
  const loadStart = performance.now();
  // fuseAttention: the command line's default (--attention fused).
  const bundle = await loadModel(DIGITS_MODEL, { device: 'cpu', threads: 1, graphCache: cache, fuseAttention: true, ...option.load });
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const images: Raster[] = [];
  const wanted: number[] = [];
  let seconds = 0;
  try {
    // Untimed: a session's first run pays for its kernels' set-up, which would bill the first option only.
    await generate(bundle, { ...request(settings, 0, option), batchSize: 1 });
    for (let digit = 0; digit < 10; digit++) {
      const start = performance.now();
      const result = await generate(bundle, request(settings, digit, option));
      seconds += (performance.now() - start) / 1000;
      for (const image of result.images) {
        images.push(image.image);
        wanted.push(digit);
      }
    }
  } finally {
    await bundle.release();
  }
  const judged = await classifier.judge(images);
  const perDigit = Array.from({ length: 10 }, () => 0);
  judged.labels.forEach((label, i) => {
    if (label === wanted[i]) perDigit[label]!++;
  });
  const correct = perDigit.reduce((a, b) => a + b, 0);
  const row = {
    option: option.label,
    flags: option.flags,
    images: images.length,
    correct,
    accuracy: correct / images.length,
    perDigit,
    frechet: frechetDistance(judged.features, realFeatures),
    secondsPerImage: seconds / images.length,
    loadSeconds,
  };
  return { row, images, features: judged.features };
}

/** How far one option's images are from fp32's for the same seeds. */
function againstFp32(run: DigitsRun, fp32: DigitsRun): DigitsRow {
  const psnrs = run.images.map((image, i) => psnr(image.data, fp32.images[i]!.data));
  // Identical images have infinite PSNR; the mean then says "identical" rather than a number.
  const psnrToFp32Db = psnrs.reduce((a, b) => a + b, 0) / psnrs.length;
  return { ...run.row, frechetToFp32: frechetDistance(run.features, fp32.features), psnrToFp32Db };
}

/** The classifier's accuracy on the real held-out digits, their features, and the distance between their two halves (for scale). */
async function realFloor(classifier: DigitClassifier): Promise<{ accuracy: number; halves: number; features: Float32Array }> {
  const real = readHeldOutDigits();
  const judged = await classifier.judge(real.images);
  const correct = judged.labels.filter((label, i) => label === real.labels[i]).length;
  const half = (real.images.length / 2) * 32;
  return { accuracy: correct / real.images.length, halves: frechetDistance(judged.features.subarray(0, half), judged.features.subarray(half)), features: judged.features };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'per-digit': { type: 'string', default: '50' },
      steps: { type: 'string', default: '20' },
      cfg: { type: 'string', default: '3' },
      seed: { type: 'string', default: '100' },
      only: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
    },
  });
  const settings: DigitsSettings = { perDigit: Number(values['per-digit']), steps: Number(values.steps), cfg: Number(values.cfg), seed: Number(values.seed) };
  const only = values.only?.split(',');
  const unknown = only?.filter((label) => !OPTIONS.some((o) => o.label === label)) ?? [];
  if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')} (known: ${OPTIONS.map((o) => o.label).join(', ')})`);
  const cpu = describeCpu();
  const classifier = await loadDigitClassifier();
  const cache = mkdtempSync(join(tmpdir(), 'diffuse-digits-'));
  const rows: DigitsRow[] = [];
  try {
    const floor = await realFloor(classifier);
    let fp32: DigitsRun | undefined;
    for (const option of OPTIONS.filter((o) => !only || only.includes(o.label))) {
      const run = await measureOption(option, settings, classifier, floor.features, cache);
      if (option === OPTIONS[0]) fp32 = run;
      const row = fp32 && fp32 !== run && run.images.length === fp32.images.length ? againstFp32(run, fp32) : run.row;
      process.stderr.write(`${JSON.stringify(row)}\n`);
      rows.push(row);
    }
    const base = fp32?.row;
    const table = [
      '| option | flags | digits read right | Fréchet distance to real digits | to fp32\'s images: Fréchet / mean PSNR | s per image | vs fp32 | load s |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows.map((r) => {
        const paired = r.frechetToFp32 === undefined ? '-' : `${r.frechetToFp32.toFixed(2)} / ${Number.isFinite(r.psnrToFp32Db) ? `${r.psnrToFp32Db!.toFixed(1)} dB` : 'identical'}`;
        const ratio = base ? `${(r.secondsPerImage / base.secondsPerImage).toFixed(2)}x` : '-';
        return `| ${r.option} | \`${r.flags}\` | ${r.correct}/${r.images} (${(100 * r.accuracy).toFixed(1)}%) | ${r.frechet.toFixed(2)} | ${paired} | ${r.secondsPerImage.toFixed(4)} | ${ratio} | ${r.loadSeconds.toFixed(2)} |`;
      }),
    ].join('\n');
    const header = [
      `tiny-digits, ${settings.perDigit} images per digit (seeds ${settings.seed}-${settings.seed + 10 * settings.perDigit - 1}), ${DIGIT_SIZE}x${DIGIT_SIZE}, Euler ${settings.steps} steps, CFG ${settings.cfg}, 1 thread, batch ${settings.perDigit}.`,
      `Classifier on the ${floor.features.length / 32} held-out real digits: ${(100 * floor.accuracy).toFixed(1)}% right; Fréchet distance between their two halves (180 digits each) ${floor.halves.toFixed(2)}: the estimate grows as the sets shrink, so compare rows with each other, at the same --per-digit.`,
      `CPU: ${cpuLine(cpu)}.`,
    ].join('\n');
    console.log(`${header}\n\n${table}`);
    if (values['no-write']) return;
    const date = new Date().toISOString().slice(0, 16).replace(/:/g, '');
    const dir = new URL('../../bench/results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    writeFileSync(new URL(`digits-${date}-cfg${settings.cfg}.json`, dir), `${JSON.stringify({ date, settings, cpu, realAccuracy: floor.accuracy, realHalvesFrechet: floor.halves, rows }, null, 2)}\n`);
    writeFileSync(new URL(`digits-${date}-cfg${settings.cfg}.md`, dir), `# Speed options on a trained model (tiny-digits) ${date}\n\n${header}\n\n${table}\n`);
    process.stderr.write(`bench: wrote bench/results/digits-${date}-cfg${settings.cfg}.{json,md}\n`);
  } finally {
    await classifier.release();
    rmSync(cache, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
