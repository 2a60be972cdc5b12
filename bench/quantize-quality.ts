/**
 * What --quantize costs in quality: the same request (weights, prompt, seed, sampler) through the
 * float model and each quantized one, compared by the cosine of the final latents and the PSNR of
 * the decoded 8-bit image, on the benchmark's full-size models (random weights: the numbers
 * describe the arithmetic, not a trained model's looks). Writes bench/results/quality-<date>.{json,md}.
 *
 *   npm run bench:quality -- [--size 512] [--seeds 1,2] [--formats u8s8,u8u8,u8s7] [--modes int8,int8-matmul,int8-attention]
 *                            [--token-merging 0.5] [--no-write]
 *
 * Every int8 weight format is run, not only the one this CPU would choose, so a results file
 * shows what each costs here (u8s8 saturates on CPUs without VNNI). --modes none runs no
 * quantized model; --token-merging adds a row per ratio for SD 1.5 (ToMe on the float model).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { Quantization } from '../src/pipeline/quantize.js';
import { INT8_FORMATS, type Int8Format } from '../src/onnx/quantize-int8.js';
import { cpuLine, describeCpu } from './cpu.js';
import type { GenerationRequest, GenerationResult } from '../src/pipeline/types.js';
import { LCM_ONNX, SD15_ONNX } from './peers.js';
import { BENCH_PROMPT, benchCache } from './settings.js';
import { cosine, psnr } from './metrics.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512' },
    seeds: { type: 'string', default: '1,2' },
    formats: { type: 'string', default: INT8_FORMATS.join(',') },
    modes: { type: 'string' },
    'token-merging': { type: 'string', default: '' },
    'no-write': { type: 'boolean', default: false },
  },
});

interface Case {
  model: string;
  label: string;
  request: Omit<GenerationRequest, 'seed'>;
  modes: Exclude<Quantization, 'none'>[];
  /** Whether --token-merging rows apply (ToMe merges nothing in a UNet without full-resolution attention, e.g. SDXL). */
  tokenMerging: boolean;
}

const size = Number(values.size);
const base = { prompt: BENCH_PROMPT, negativePrompt: '', cfgRescale: 0, rng: 'cpu', seedMode: 'a1111', width: size, height: size, batchSize: 1 } as const;
const CASES: Case[] = [
  { model: SD15_ONNX, label: 'SD 1.5, Euler, 20 steps, CFG 7.5', request: { ...base, sampler: 'euler', schedule: 'normal', steps: 20, cfgScale: 7.5 }, modes: ['int8', 'int8-matmul', 'int8-attention'], tokenMerging: true },
  { model: LCM_ONNX, label: 'LCM, 4 steps, guidance 8', request: { ...base, sampler: 'lcm', schedule: 'normal', steps: 4, cfgScale: 8 }, modes: ['int8'], tokenMerging: false },
];

async function run(model: string, quantize: Quantization, format: Int8Format | undefined, requests: GenerationRequest[], tokenMerging = 0): Promise<GenerationResult[]> {
  const bundle = await loadModel(model, {
    device: 'cpu',
    fuseAttention: true,
    quantize,
    ...(format ? { int8Format: format } : {}),
    ...(tokenMerging > 0 ? { tokenMerging } : {}),
    graphCache: join(benchCache(), 'graphs'),
    optimizedCache: join(benchCache(), 'optimized'),
  });
  try {
    const out: GenerationResult[] = [];
    for (const request of requests) out.push(await generate(bundle, request));
    return out;
  } finally {
    await bundle.release();
  }
}

async function main(): Promise<void> {
  const seeds = values.seeds.split(',').map(Number);
  const formats = values.formats.split(',') as Int8Format[];
  const unknown = formats.filter((f) => !INT8_FORMATS.includes(f));
  if (unknown.length > 0) throw new Error(`--formats: unknown ${unknown.join(', ')} (known: ${INT8_FORMATS.join(', ')})`);
  const cpu = describeCpu();
  const modes = values.modes?.split(',').filter((m) => m !== 'none');
  const ratios = values['token-merging'] ? values['token-merging'].split(',').map(Number) : [];
  const rows: { case: string; mode: string; format: string; seed: number; cosine: number; psnrDb: number }[] = [];
  const record = (c: Case, mode: string, format: string, reference: GenerationResult[], results: GenerationResult[]) =>
    results.forEach((r, i) => {
      const row = { case: c.label, mode, format, seed: seeds[i]!, cosine: cosine(reference[i]!.latents, r.latents), psnrDb: psnr(reference[i]!.images[0]!.image.data, r.images[0]!.image.data) };
      process.stderr.write(`${JSON.stringify(row)}\n`);
      rows.push(row);
    });
  for (const c of CASES) {
    if (!existsSync(c.model)) {
      process.stderr.write(`bench: ${c.label} skipped: ${c.model} not built\n`);
      continue;
    }
    if (modes && !c.modes.some((m) => modes.includes(m)) && !(c.tokenMerging && ratios.length)) continue;
    const requests = seeds.map((seed) => ({ ...c.request, seed }));
    const reference = await run(c.model, 'none', undefined, requests);
    for (const mode of c.modes.filter((m) => !modes || modes.includes(m))) {
      for (const format of formats) record(c, mode, format, reference, await run(c.model, mode, format, requests));
    }
    if (c.tokenMerging) for (const ratio of ratios) record(c, `token merging ${ratio}`, 'fp32', reference, await run(c.model, 'none', undefined, requests, ratio));
  }
  const table = [
    '| model and sampling | option | weights | seed | cosine of final latents | PSNR of the image (dB) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.case} | ${r.mode} | ${r.format}${r.format === cpu.int8Format ? ' (this CPU\'s)' : ''} | ${r.seed} | ${r.cosine.toFixed(5)} | ${r.psnrDb.toFixed(2)} |`),
  ].join('\n');
  const header = `Quantized (and token-merged) vs float on the same weights, prompt and seed, ${size}x${size}, CPU (bench models, random weights).\nCPU: ${cpuLine(cpu)}.\n`;
  console.log(`${header}\n${table}`);
  if (values['no-write']) return;
  const date = new Date().toISOString().slice(0, 16).replace(/:/g, '');
  const dir = new URL('../../bench/results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL(`quality-${date}.json`, dir), `${JSON.stringify({ date, size, seeds, cpu, rows }, null, 2)}\n`);
  writeFileSync(new URL(`quality-${date}.md`, dir), `# Quantization quality ${date}\n\n${header}\n${table}\n`);
  process.stderr.write(`bench: wrote bench/results/quality-${date}.{json,md}\n`);
}

await main();
