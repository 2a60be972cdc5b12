import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { Transfers } from '../src/onnx/resident-inputs.js';
import { TINY_SD } from '../test/helpers/cli.js';
import { tinyRequest } from '../test/helpers/tiny-model.js';

/**
 * Where the time of a WebGPU run goes, and what each denoising step copies between host and
 * device: tiny-sd (test/fixtures) txt2img at 64x64, 4 Euler steps, CFG 7 (a batch of 2 per UNet
 * call), through loadModel + generate on `--device webgpu`, as `diffuse txt2img` runs it.
 *
 * Each run is a child process (a fresh ONNX Runtime and Dawn). Run 1 starts with an empty Mesa
 * shader cache (MESA_SHADER_CACHE_DIR, a new folder), runs 2 and 3 reuse that folder: the first-run
 * vs later-run cost a user sees. Per run: session creation (loadModel), each step, the VAE decode,
 * and the UNet's input bytes copied from the host and found on the device, and output bytes copied
 * back (src/onnx/resident-inputs.ts counts them). "Without residency" is what the same feeds copy
 * when every input comes from the host: the sum of both input figures.
 *
 *   npx tsc -p . && node dist/bench/webgpu.js       (needs a WebGPU adapter: .ci/webgpu-adapter.sh)
 */

interface RunFigures {
  loadMs: number;
  stepMs: number[];
  decodeMs: number;
  totalMs: number;
  unet: Transfers;
}

const STEPS = 4;

async function child(): Promise<void> {
  const t0 = performance.now();
  const bundle = await loadModel(TINY_SD, { device: 'webgpu' });
  const loadMs = performance.now() - t0;
  if (bundle.provider !== 'webgpu') throw new Error(`the UNet runs on ${bundle.provider}`);
  const stepMs: number[] = [];
  let last = performance.now();
  let decodeStart = 0;
  const result = await generate(bundle, tinyRequest({ steps: STEPS, width: 64, height: 64, sampler: 'euler' }), (e) => {
    if (e.kind === 'step') {
      const now = performance.now();
      stepMs.push(now - last);
      last = now;
    } else if (e.kind === 'stage' && e.stage === 'decode') decodeStart = performance.now();
  });
  const figures: RunFigures = { loadMs, stepMs, decodeMs: performance.now() - decodeStart, totalMs: performance.now() - t0, unet: bundle.unet.transfers };
  if (result.images.length !== 1) throw new Error('no image');
  await bundle.release();
  process.stdout.write(JSON.stringify(figures));
}

function runChild(cacheDir: string): RunFigures {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child'], { env: { ...process.env, MESA_SHADER_CACHE_DIR: cacheDir }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the run failed (${r.status}): ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout) as RunFigures;
}

const s = (ms: number): string => (ms / 1000).toFixed(2);
const kb = (bytes: number): string => (bytes / 1024).toFixed(1);

async function main(): Promise<void> {
  const cache = mkdtempSync(join(tmpdir(), 'diffuse-mesa-cache-'));
  try {
    const load = [loadavg()[0]!];
    const runs = ['first (empty shader cache)', 'second', 'third'].map((label) => ({ label, figures: runChild(cache) }));
    load.push(loadavg()[0]!);
    console.log(`WebGPU on ${TINY_SD}: txt2img 64x64, ${STEPS} Euler steps, CFG 7 (UNet batch 2); load average ${load.map((l) => l.toFixed(1)).join(' → ')}`);
    console.log('| run | load (s) | step 1 (s) | later steps (s, median) | VAE decode (s) | whole (s) |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const { label, figures: f } of runs) {
      const later = [...f.stepMs.slice(1)].sort((a, b) => a - b)[Math.floor((f.stepMs.length - 1) / 2)]!;
      console.log(`| ${label} | ${s(f.loadMs)} | ${s(f.stepMs[0]!)} | ${s(later)} | ${s(f.decodeMs)} | ${s(f.totalMs)} |`);
    }
    const u = runs[0]!.figures.unet;
    const per = (bytes: number): string => kb(bytes / STEPS);
    console.log(`\nUNet per step (${u.runs / STEPS} call${u.runs === STEPS ? '' : 's'}): host→device ${per(u.hostToDevice)} KiB, kept on the device ${per(u.keptOnDevice)} KiB, device→host ${per(u.deviceToHost)} KiB`);
    console.log(`without residency: host→device ${per(u.hostToDevice + u.keptOnDevice)} KiB per step (${((u.keptOnDevice / (u.hostToDevice + u.keptOnDevice)) * 100).toFixed(0)}% saved)`);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}

await (process.argv.includes('--child') ? child() : main());
