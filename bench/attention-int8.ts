/**
 * One SD 1.5 attention block three ways, taking turns in one process: plain float32 as exported
 * (MatMul, Softmax, MatMul), fused (fuse-attention.ts: MultiHeadAttention) and int8
 * (quantize-attention.ts), at the UNet's shapes for a 512² CFG step (batch 2, 8 heads). Prints the
 * median time per call of each and the int8 output's cosine and worst error against float32, and
 * writes them to bench/results/attention-int8-<date>.md (with the CPU and the load average).
 *
 *   npm run build && node dist/bench/attention-int8.js [--rounds 5] [--threads 2] [--format u8s8] [--no-write]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { fuseAttention } from '../src/onnx/fuse-attention.js';
import { quantizeAttention } from '../src/onnx/quantize-attention.js';
import { INT8_FORMATS, type Int8Format } from '../src/onnx/quantize-int8.js';
import { int8Support } from '../src/onnx/cpu-features.js';
import { cosine } from './metrics.js';
import { cpuLine, describeCpu } from './cpu.js';
import { benchCache } from './settings.js';
import { plainAttentionGraph } from './attention-graph.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, threads: { type: 'string', default: '2' }, format: { type: 'string' }, 'no-write': { type: 'boolean', default: false } },
});
const format = (values.format ?? int8Support().format) as Int8Format;
if (!INT8_FORMATS.includes(format)) throw new Error(`--format: one of ${INT8_FORMATS.join(', ')}`);

/** SD 1.5's attention shapes at 512² (64² latent): queries, keys and the width of each level. */
const SHAPES = [
  { label: 'self 4096×4096, 320', queries: 4096, keys: 4096, hidden: 320 },
  { label: 'self 1024×1024, 640', queries: 1024, keys: 1024, hidden: 640 },
  { label: 'cross 4096×77, 320', queries: 4096, keys: 77, hidden: 320 },
];
const BATCH = 2;
const HEADS = 8;

function randomTensor(dims: number[], spread: number): ort.Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  // Roughly normal (sum of uniforms), so the scores have a softmax with some peaks, as a trained block's do.
  const data = new Float32Array(n).map(() => (Math.random() + Math.random() + Math.random() - 1.5) * spread);
  return new ort.Tensor('float32', data, dims);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(benchCache(), 'attention-int8-'));
  const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: Number(values.threads), graphOptimizationLevel: 'all', logSeverityLevel: 3 };
  const lines = [
    `CPU: ${cpuLine(describeCpu())}; load average at the start ${loadavg().map((l) => l.toFixed(1)).join(', ')} (a shared machine: read the ratios).`,
    `Weights format ${format}, ${values.threads} threads, ${values.rounds} rounds taking turns after a warm-up; median ms per call (min–max).`,
    '',
    '| block (batch 2, 8 heads) | plain fp32 | fused fp32 | int8 | int8 / fused | int8 / plain | int8 cosine to fp32 | int8 max error / max |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  console.log(lines.join('\n'));
  try {
    for (const shape of SHAPES) {
      const plain = await plainAttentionGraph(join(dir, String(shape.hidden)), { batch: BATCH, heads: HEADS, ...shape });
      const fused = fuseAttention(plain);
      const int8 = quantizeAttention(plain, format);
      if (fused.fused !== 1 || int8.attentions !== 1) throw new Error('the block was not recognised');
      const sessions = {
        plain: await ort.InferenceSession.create(plain, options),
        fused: await ort.InferenceSession.create(fused.model, options),
        int8: await ort.InferenceSession.create(int8.model, options),
      };
      // Spread 3: the scaled scores span a few units, as in trained attention.
      const feeds = { q: randomTensor([BATCH, shape.queries, shape.hidden], 3), k: randomTensor([BATCH, shape.keys, shape.hidden], 3), v: randomTensor([BATCH, shape.keys, shape.hidden], 1) };
      const times: Record<keyof typeof sessions, number[]> = { plain: [], fused: [], int8: [] };
      const outputs: Partial<Record<keyof typeof sessions, Float32Array>> = {};
      for (let round = 0; round <= Number(values.rounds); round++) {
        for (const key of Object.keys(sessions) as (keyof typeof sessions)[]) {
          const t0 = performance.now();
          const out = await sessions[key].run(feeds);
          // Round 0 warms up.
          if (round > 0) times[key].push(performance.now() - t0);
          outputs[key] = out.out!.data as Float32Array;
        }
      }
      const median = (t: number[]) => [...t].sort((a, b) => a - b)[t.length >> 1]!;
      const cell = (t: number[]) => `${median(t).toFixed(1)} (${Math.min(...t).toFixed(1)}–${Math.max(...t).toFixed(1)})`;
      const ref = outputs.plain!;
      const got = outputs.int8!;
      let maxErr = 0;
      let maxRef = 0;
      for (let i = 0; i < ref.length; i++) {
        maxErr = Math.max(maxErr, Math.abs(got[i]! - ref[i]!));
        maxRef = Math.max(maxRef, Math.abs(ref[i]!));
      }
      lines.push(`| ${shape.label} | ${cell(times.plain)} | ${cell(times.fused)} | ${cell(times.int8)} | ${(median(times.int8) / median(times.fused)).toFixed(2)} | ${(median(times.int8) / median(times.plain)).toFixed(2)} | ${cosine(got, ref).toFixed(5)} | ${(maxErr / maxRef).toFixed(4)} |`);
      console.log(lines.at(-1));
      await Promise.all(Object.values(sessions).map((s) => s.release()));
    }
    if (values['no-write']) return;
    const date = new Date().toISOString().slice(0, 16).replace(/:/g, '');
    const results = new URL('../../bench/results/', import.meta.url);
    mkdirSync(results, { recursive: true });
    writeFileSync(new URL(`attention-int8-${date}.md`, results), `# One SD 1.5 attention block: plain, fused and int8 ${date}\n\n${lines.join('\n')}\n`);
    process.stderr.write(`bench: wrote bench/results/attention-int8-${date}.md\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
