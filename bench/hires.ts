import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { GenerationRequest, HiresUpscaler, PipelineEvent } from '../src/pipeline/types.js';
import { resolveSampler } from '../src/schedulers/index.js';
import { cpuLine, describeCpu } from './cpu.js';
import { writeResults } from './results-file.js';

/**
 * Hires fix 512 -> 1024 on full-size SD 1.5 (tools/make_bench_models.py's sd15/onnx/: real
 * architecture, random weights), the whole image through loadModel + generate as the CLI runs it
 * (attention fused, optimised-graph cache): Euler, CFG 7, --steps first-pass steps, --hires-scale 2,
 * strength 0.7, hires steps 0 (as many again at 1024², from a steps/0.7 schedule), each --upscalers
 * entry (latent; lanczos: decode, resize, encode); a plain 512² txt2img of the same settings beside
 * it, taking turns --repeats times (plain, hires, plain, hires ...) so a slow spell of a shared
 * machine falls on both; 2 threads, one process, the model loaded once. Per run: the whole image,
 * first pass, second pass (with the upscale), decode, median step of each pass, the process's peak
 * RSS so far, the load average. Writes bench/results/hires-<date>-<cpu>.{json,md}.
 *
 *   npx tsc -p . && node dist/bench/hires.js [--steps 20] [--upscalers latent,lanczos] [--repeats 1] [--no-write]
 */

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '20' },
    upscalers: { type: 'string', default: 'latent,lanczos' },
    repeats: { type: 'string', default: '1' },
    'no-write': { type: 'boolean', default: false },
  },
});

const CACHE = process.env.DIFFUSE_BENCH_CACHE ?? join(process.env.HOME ?? '', '.cache', 'diffuse-bench');
const MODEL = join(CACHE, 'sd15', 'onnx');

interface Run {
  row: string;
  turn: number;
  size: string;
  wholeS: number;
  /** Hires rows: the first pass (with the text encoder), then the second (with the upscale) up to the decode. */
  firstPassS?: number;
  secondPassS?: number;
  decodeS: number;
  /** Each denoising pass's step times. */
  stepS: number[][];
  peakRssMb: number;
  load: [number, number];
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const f1 = (x: number): string => x.toFixed(1);

/** One image, timed by the pipeline's events: pass marks, each denoising stage's steps, the decode. */
async function timed(run: (listener: (e: PipelineEvent) => void) => ReturnType<typeof generate>): Promise<Omit<Run, 'row' | 'turn'>> {
  const passes: number[] = [];
  const steps: number[][] = [];
  let last = 0;
  let decodeAt = 0;
  const load0 = loadavg()[0]!;
  const started = performance.now();
  const result = await run((e) => {
    const now = performance.now();
    if (e.kind === 'pass') passes.push(now);
    else if (e.kind === 'stage' && e.stage === 'denoise') steps.push([]);
    else if (e.kind === 'stage' && e.stage === 'decode') decodeAt = now;
    if (e.kind === 'step') steps[steps.length - 1]!.push((now - last) / 1000);
    last = now;
  });
  const end = performance.now();
  const { width, height } = result.images[0]!.image;
  return {
    size: `${width}x${height}`,
    wholeS: (end - started) / 1000,
    ...(passes.length === 2 ? { firstPassS: (passes[1]! - passes[0]!) / 1000, secondPassS: (decodeAt - passes[1]!) / 1000 } : {}),
    decodeS: (end - decodeAt) / 1000,
    stepS: steps,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    load: [load0, loadavg()[0]!],
  };
}

function table(runs: readonly Run[], rows: readonly string[]): string {
  const lines = [
    '| row | size | whole image, s (median; runs) | × plain (per turn) | first pass, s | second pass, s | decode, s | s / step (each pass) | peak RSS so far |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of rows) {
    const mine = runs.filter((r) => r.row === row);
    const whole = mine.map((r) => r.wholeS);
    const ratios = mine.flatMap((r) => {
      const plain = runs.find((p) => p.row === rows[0] && p.turn === r.turn);
      return plain && row !== rows[0] ? [r.wholeS / plain.wholeS] : [];
    });
    const pass = (k: 'firstPassS' | 'secondPassS') => (mine[0]![k] === undefined ? '' : f1(median(mine.map((r) => r[k]!))));
    const stepMedians = mine[0]!.stepS.map((_, i) => median(mine.flatMap((r) => r.stepS[i] ?? [])).toFixed(2)).join(' / ');
    lines.push(
      `| ${row} | ${mine[0]!.size} | ${f1(median(whole))} (${whole.map(f1).join(', ')}) | ${ratios.length ? `${median(ratios).toFixed(3)} (${ratios.map((x) => x.toFixed(3)).join(', ')})` : '1'} | ` +
        `${pass('firstPassS')} | ${pass('secondPassS')} | ${f1(median(mine.map((r) => r.decodeS)))} | ${stepMedians} | ${(mine[0]!.peakRssMb / 1024).toFixed(2)} GB |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const steps = Number(values.steps);
  const repeats = Number(values.repeats);
  const upscalers = values.upscalers.split(',').filter(Boolean) as HiresUpscaler[];
  const t0 = performance.now();
  const bundle = await loadModel(MODEL, { device: 'cpu', threads: 2, withEncoder: true, fuseAttention: true, optimizedCache: join(CACHE, 'optimized') });
  const loadS = (performance.now() - t0) / 1000;
  const runs: Run[] = [];
  try {
    const base: GenerationRequest = {
      prompt: 'a lighthouse on a cliff at dusk',
      negativePrompt: '',
      steps,
      cfgScale: 7,
      cfgRescale: 0,
      seed: 1,
      rng: 'cpu',
      seedMode: 'a1111',
      ...resolveSampler('Euler', undefined),
      width: 512,
      height: 512,
      batchSize: 1,
    };
    const requests: [string, GenerationRequest][] = [
      ['plain 512', base],
      ...upscalers.map((upscaler): [string, GenerationRequest] => [`hires ${upscaler} 512->1024`, { ...base, hires: { target: { scale: 2 }, upscaler, strength: 0.7 } }]),
    ];
    for (let turn = 1; turn <= repeats; turn++) {
      for (const [row, request] of requests) {
        const run = { row, turn, ...(await timed((listener) => generate(bundle, request, listener))) };
        runs.push(run);
        const passes = run.firstPassS === undefined ? '' : ` (first pass ${f1(run.firstPassS)} s, second pass ${f1(run.secondPassS!)} s, decode ${f1(run.decodeS)} s)`;
        process.stdout.write(`${row.padEnd(24)} ${run.size} turn ${turn}: ${f1(run.wholeS)} s${passes}, peak RSS so far ${(run.peakRssMb / 1024).toFixed(2)} GB, load ${run.load.map(f1).join(' -> ')}\n`);
      }
    }
  } finally {
    await bundle.release();
  }
  const loads = runs.flatMap((r) => r.load);
  const header =
    `Full-size SD 1.5 (random weights, sd15/onnx), Euler, ${steps} first-pass steps, CFG 7, hires scale 2, strength 0.7, hires steps 0, fp32, 2 threads; ` +
    `rows taking turns ${repeats} time(s); model loaded once (${f1(loadS)} s). Peak RSS is the process's so far after the row's first run (runs go plain, then the hires rows).\n` +
    `CPU: ${cpuLine(describeCpu())}. Load average ${f1(Math.min(...loads))}–${f1(Math.max(...loads))} during the runs.\n`;
  const md = `${header}\n${table(runs, [...new Set(runs.map((r) => r.row))])}`;
  console.log(`\n${md}`);
  if (!values['no-write']) writeResults('hires-', 'Hires fix', md, { settings: { steps, repeats, upscalers, cfg: 7, strength: 0.7, scale: 2 }, loadS, runs });
}

await main();
