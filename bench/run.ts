/**
 * `npm run bench`: diffuse against its peers on full-size Stable Diffusion 1.5 with random weights
 * (tools/make_bench_models.py builds them; speed depends on the architecture, not the values).
 * Each tool runs in its own process, one at a time, on the same weights and settings; the table
 * goes to stdout and to bench/results/<date>.{json,md}. See bench/README.md.
 *
 *   npm run bench -- [--sizes 512,256] [--steps 8] [--threads 2] [--only 'diffuse,diffuse int8,optimum (ORT)'] [--repeats 3] [--timeout 1800] [--note 'shared machine'] [--no-write] [--no-optimized-cache]
 *
 * With --repeats the tools take turns (A B C A B C ...), so a slow spell of a shared machine falls on
 * every tool alike; the table gives each tool's median run and the spread of its runs. A row that is
 * an option of another (Peer.reference: int8, DeepCache) is also given as ratios to that row's run
 * of the same turn, with the distance of its final latents and image from that row's.
 */
import { mkdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { cpuLine, describeCpu } from './cpu.js';
import { clearOutput, outputDistance } from './compare.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { measure, type Row } from './measure.js';
import { choosePeers, PEERS } from './peers.js';
import { combineRuns, markdownTable, summarize, withReference, type Summary } from './report.js';
import { writeResults } from './results-file.js';
import { benchCache, FLOOR_S_PER_CFG_STEP_512, ortNodeVersion, type WorkerArgs } from './settings.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '512,256' },
    steps: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    only: { type: 'string' },
    repeats: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '1800' },
    note: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    'no-optimized-cache': { type: 'boolean', default: false },
  },
});

function machine(): Record<string, string | number> {
  return {
    cpu: cpuLine(describeCpu()),
    logicalCores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntimeNode: ortNodeVersion(),
  };
}

/** One run's row, beside its reference row's run of the same turn and size when both ran. */
function compared(row: Row, rows: readonly Row[], outputOf: (tool: string, size: number, run: number) => string): Summary {
  const peer = PEERS.find((p) => p.name === row.tool);
  const summary = summarize(row, !peer?.noFloor);
  const reference = peer?.reference;
  const other = reference ? rows.find((r) => r.tool === reference && r.width === row.width && r.run === row.run && r.result) : undefined;
  if (!row.result || !other) return summary;
  return withReference(summary, summarize(other), outputDistance(outputOf(row.tool, row.width, row.run!), outputOf(other.tool, other.width, other.run!)));
}

async function main(): Promise<void> {
  const sizes = values.sizes.split(',').map(Number);
  const peers = values.only ? choosePeers(values.only) : PEERS;
  const repeats = Number(values.repeats);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a whole number from 1 (got ${values.repeats})`);
  const rows: Row[] = [];
  const outputs = join(benchCache(), 'outputs');
  mkdirSync(outputs, { recursive: true });
  const outputOf = (tool: string, size: number, run: number): string => join(outputs, `${tool.replace(/\W+/g, '_')}-${size}-run${run}`);
  for (let run = 1; run <= repeats; run++) {
    for (const size of sizes) {
      for (const peer of peers) {
        // A row's fixed size (SDXL-Turbo's 512²) wins over --sizes: its label, skip check and output files say so.
        const settings = { width: size, height: size, steps: Number(values.steps), cfg: 7.5, ...peer.fixed };
        // A tool that cannot run here is said once, not once per repeat.
        if (run > 1 && rows.some((r) => r.tool === peer.name && r.width === settings.width && r.skipped && !r.failed)) continue;
        const output = outputOf(peer.name, settings.width, run);
        clearOutput(output);
        const args: WorkerArgs = { model: '', threads: Number(values.threads), seed: 42, output, ...(values['no-optimized-cache'] ? { noOptimizedCache: true } : {}), ...settings };
        const label = `${peer.name} ${args.width}x${args.height}${repeats > 1 ? ` (run ${run}/${repeats})` : ''}`;
        process.stderr.write(`bench: ${label} ...\n`);
        const row = await measure(peer, args, Number(values.timeout));
        process.stderr.write(`bench: ${label} ${row.skipped ? `skipped (${row.skipped})` : `done in ${row.wallS?.toFixed(0)} s`}\n`);
        rows.push({ ...row, run });
      }
    }
  }
  const summaries = combineRuns(rows.map((row) => compared(row, rows, outputOf)));
  const table = markdownTable(summaries);
  const info = machine();
  const header =
    `Full-size SD 1.5 (random weights), txt2img, Euler, ${values.steps} steps, CFG 7.5, batch 1, fp32 unless the row says int8, CPU, ${values.threads} threads.\n` +
    `SDXL rows: SDXL base's architecture (random weights), CFG 5 (its default); sdxl-turbo: the same weights at 512x512, 1 step, no CFG, euler_a; no floor.\n` +
    `LCM rows: the LCM-Dreamshaper-v7 architecture (random weights), its sampler, 4 steps, guidance 8 embedded (one UNet sample per step; floor halved).\n` +
    `Floor: ${FLOOR_S_PER_CFG_STEP_512} s per CFG step at 512x512 (1.61 TFLOP at the measured operator rates, issue 7), scaled by pixels at other sizes.\n` +
    `Machine: ${Object.entries(info).map(([k, v]) => `${k} ${v}`).join(', ')}.\n` +
    (values.note ? `Note: ${values.note}.\n` : '') +
    (values['no-optimized-cache'] ? `diffuse without its optimised-graph cache (--optimized-cache off): ONNX Runtime optimises at every load.\n` : '') +
    `Order: ${peers.map((p) => p.name).join(', ')}${repeats > 1 ? `, taking turns ${repeats} times; each row is the tool's median run, "spread" the range of its runs' medians` : ''}.\n`;
  console.log(`${header}\n${table}`);
  if (values['no-write']) return;
  const settings = { sizes, steps: Number(values.steps), cfg: 7.5, threads: Number(values.threads), sampler: 'euler', seed: 42, repeats, order: peers.map((p) => p.name), ...(values['no-optimized-cache'] ? { optimizedCache: false } : {}), ...(values.note ? { note: values.note } : {}) };
  writeResults('', 'Benchmark', `${header}\n${table}`, { machine: info, settings, floorS512: FLOOR_S_PER_CFG_STEP_512, summaries, rows });
}

await main();
