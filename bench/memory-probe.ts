/**
 * Where a diffuse run's memory goes, phase by phase (issue #22): loads the bench's converted SD 1.5 (and a
 * ControlNet unit), and prints at the end of each phase (converting, each session's opening, text encoding, each
 * step, decoding) the process's RSS split into anonymous and file-backed pages (mmapped weights) and its peak so
 * far (VmHWM, the kernel's). onnxruntime-node runs a session synchronously on the main thread, so nothing in this
 * process can sample inside a run: a run's transient peak shows only as VmHWM growing over its phase. File-backed
 * pages are clean and the kernel takes them back under memory pressure, so compare runs made with as much memory
 * free. Session options to try come from DIFFUSE_PROBE_OPTIONS (JSON, merged into the options of the sessions whose
 * path matches DIFFUSE_PROBE_MATCH). Not a timing bench.
 * Run: npx tsc -p . && node dist/bench/memory-probe.js [units, default 1] [steps, default 1]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ensureConvertedControlNet } from '../src/graphs/controlnet-convert.js';
import { ensureConvertedModel } from '../src/graphs/converted-cache.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { Raster } from '../src/image/raster.js';
import type { PipelineEvent } from '../src/pipeline/types.js';
import { CONTROLNET_TORCH } from './peers.js';
import { BENCH_PROMPT, benchCache } from './settings.js';

interface Status {
  rss: number;
  anon: number;
  file: number;
  hwm: number;
}

function status(): Status {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), hwm: kb('VmHWM') };
}

const phases: Array<{ name: string; t0: number; end?: Status; t1?: number }> = [];
function phase(name: string): void {
  const now = performance.now();
  if (phases.length) Object.assign(phases[phases.length - 1]!, { end: status(), t1: now });
  phases.push({ name, t0: now });
}

const extra = JSON.parse(process.env.DIFFUSE_PROBE_OPTIONS ?? '{}') as ort.InferenceSession.SessionOptions;
const create = ort.InferenceSession.create.bind(ort.InferenceSession) as (path: string, options: ort.InferenceSession.SessionOptions) => Promise<ort.InferenceSession>;
(ort.InferenceSession as unknown as { create: unknown }).create = async (path: string, options: ort.InferenceSession.SessionOptions) => {
  phase(`open ${path.replace(benchCache(), '~')}`);
  if (!process.env.DIFFUSE_PROBE_OPTIONS || !new RegExp(process.env.DIFFUSE_PROBE_MATCH ?? '').test(path)) return create(path, options);
  const merged = { ...options, ...extra, extra: { session: { ...(options.extra?.session ?? {}), ...(extra.extra?.session ?? {}) } } };
  return create(path, merged);
};

const units = Number(process.argv[2] ?? 1);
const steps = Number(process.argv[3] ?? 1);
// A first run converts: the graphs are built before the first weight is written.
phase('convert: build');
let writing = false;
const onProgress = (event: { stage: string }) => {
  if (event.stage !== 'write' || writing) return;
  writing = true;
  phase('convert: write');
};
const model = await ensureConvertedModel(join(benchCache(), 'sd15', 'torch'), join(benchCache(), 'converted'), { onProgress });
writing = false;
phase('convert ControlNet');
const controlnets = units > 0 ? [await ensureConvertedControlNet(CONTROLNET_TORCH, join(benchCache(), 'converted'), onProgress)] : [];
phase('start');
const bundle = await loadModel(model, {
  device: 'cpu',
  threads: 2,
  fuseAttention: true,
  parkTextEncoder: true,
  graphCache: join(benchCache(), 'graphs'),
  optimizedCache: join(benchCache(), 'optimized'),
  ...(controlnets.length ? { controlnets } : {}),
});
phase('loaded');
const image: Raster = { width: 512, height: 512, channels: 3, data: new Uint8Array(512 * 512 * 3).fill(128) };
let step = 0;
await generate(
  bundle,
  {
    prompt: BENCH_PROMPT,
    negativePrompt: '',
    steps,
    cfgScale: 7.5,
    cfgRescale: 0,
    seed: 1,
    rng: 'cpu',
    seedMode: 'diffusers',
    sampler: 'euler',
    schedule: 'normal',
    width: 512,
    height: 512,
    batchSize: 1,
    ...(controlnets.length ? { control: controlnets.map((dir) => ({ model: dir, image, weight: 1, start: 0, end: 1 })) } : {}),
  },
  (event: PipelineEvent) => {
    if (event.kind === 'stage') phase(event.stage);
    else if (event.kind === 'step') phase(`after step ${++step}`);
  },
);
phase('done');
await bundle.release();
phase('released');
const mb = (n: number) => n.toFixed(0).padStart(6);
console.log(`options ${JSON.stringify(extra)} for ${process.env.DIFFUSE_PROBE_MATCH ?? 'every session'}, units ${units}`);
console.log(`${'phase (MB at its end)'.padEnd(56)}    RSS   anon   file  VmHWM      s`);
for (const p of phases.filter((q) => q.end)) {
  console.log(`${p.name.slice(-56).padEnd(56)} ${mb(p.end!.rss)} ${mb(p.end!.anon)} ${mb(p.end!.file)} ${mb(p.end!.hwm)} ${((p.t1! - p.t0) / 1000).toFixed(1).padStart(6)}`);
}
process.exit(0);
