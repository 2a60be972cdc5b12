/**
 * `npm run bench`: diffuse against its peers on full-size Stable Diffusion 1.5 with random weights
 * (tools/make_bench_models.py builds them; speed depends on the architecture, not the values).
 * Each tool runs in its own process, one at a time, on the same weights and settings; the table
 * goes to stdout and to bench/results/<date>.{json,md}. See bench/README.md.
 *
 *   npm run bench -- [--sizes 512,256] [--steps 8] [--threads 2] [--only 'diffuse,diffuse int8,optimum (ORT)'] [--timeout 1800] [--no-write]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { cpuLine, describeCpu } from './cpu.js';
import { parseArgs } from 'node:util';
import { measure, type Row } from './measure.js';
import { PEERS } from './peers.js';
import { markdownTable, summarize } from './report.js';
import { FLOOR_S_PER_CFG_STEP_512, type WorkerArgs } from './settings.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '512,256' },
    steps: { type: 'string', default: '8' },
    threads: { type: 'string', default: '2' },
    only: { type: 'string' },
    timeout: { type: 'string', default: '1800' },
    'no-write': { type: 'boolean', default: false },
  },
});

function machine(): Record<string, string | number> {
  const ortVersion = (JSON.parse(readFileSync(new URL('../../node_modules/onnxruntime-node/package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return {
    cpu: cpuLine(describeCpu()),
    logicalCores: cpus().length,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntimeNode: ortVersion,
  };
}

async function main(): Promise<void> {
  const sizes = values.sizes.split(',').map(Number);
  const only = values.only?.split(',');
  const peers = only ? PEERS.filter((p) => only.includes(p.name)) : PEERS;
  const rows: Row[] = [];
  for (const size of sizes) {
    for (const peer of peers) {
      const args: WorkerArgs = { model: '', width: size, height: size, steps: Number(values.steps), cfg: 7.5, threads: Number(values.threads), seed: 42, ...peer.fixed };
      process.stderr.write(`bench: ${peer.name} ${size}x${size} ...\n`);
      const row = await measure(peer, args, Number(values.timeout));
      process.stderr.write(`bench: ${peer.name} ${size}x${size} ${row.skipped ? `skipped (${row.skipped})` : `done in ${row.wallS?.toFixed(0)} s`}\n`);
      rows.push(row);
    }
  }
  const summaries = rows.map(summarize);
  const table = markdownTable(summaries);
  const info = machine();
  const header =
    `Full-size SD 1.5 (random weights), txt2img, Euler, ${values.steps} steps, CFG 7.5, batch 1, fp32 unless the row says int8, CPU, ${values.threads} threads.\n` +
    `LCM rows: the LCM-Dreamshaper-v7 architecture (random weights), its sampler, 4 steps, guidance 8 embedded (one UNet sample per step; floor halved).\n` +
    `Floor: ${FLOOR_S_PER_CFG_STEP_512} s per CFG step at 512x512 (1.61 TFLOP at the measured operator rates, issue 7), scaled by pixels at other sizes.\n` +
    `Machine: ${Object.entries(info).map(([k, v]) => `${k} ${v}`).join(', ')}.\n`;
  console.log(`${header}\n${table}`);
  if (values['no-write']) return;
  const date = new Date().toISOString().slice(0, 16).replace(/:/g, '');
  const dir = new URL('../../bench/results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const settings = { sizes, steps: Number(values.steps), cfg: 7.5, threads: Number(values.threads), sampler: 'euler', seed: 42 };
  writeFileSync(new URL(`${date}.json`, dir), `${JSON.stringify({ date, machine: info, settings, floorS512: FLOOR_S_PER_CFG_STEP_512, summaries, rows }, null, 2)}\n`);
  writeFileSync(new URL(`${date}.md`, dir), `# Benchmark ${date}\n\n${header}\n${table}\n`);
  process.stderr.write(`bench: wrote bench/results/${date}.{json,md}\n`);
}

await main();
