import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { cachedModelEdit } from '../src/onnx/edited-model-cache.js';
import { fuseAttention } from '../src/onnx/fuse-attention.js';
import { ort } from '../src/onnx/runtime.js';

/**
 * `diffuse convert` on full-size SD 1.5 (the benchmark's random-weight single-file checkpoint):
 * conversion time and peak RSS (measured by /usr/bin/time -v around a child process that only
 * converts), then the converted graphs against optimum's export of the same weights — UNet at
 * 512² latents (64x64, batch 2 as under CFG), text encoder, VAE decoder — and the UNet's time
 * per call for both, each with the pipeline's attention fusion (src/onnx/fuse-attention.ts).
 *
 *   npm run bench:convert            (needs tools/make_bench_models.py's sd15/ in $DIFFUSE_BENCH_CACHE)
 */

const CACHE = process.env.DIFFUSE_BENCH_CACHE ?? join(process.env.HOME ?? '', '.cache', 'diffuse-bench');
const CHECKPOINT = join(CACHE, 'sd15', 'sd15.safetensors');
const OPTIMUM = join(CACHE, 'sd15', 'onnx');
const TIMED_RUNS = 5;

/** Deterministic inputs in [-1, 1) (a 32-bit LCG; nothing depends on their values but the comparison). */
function inputs(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function measureConversion(out: string): { seconds: number; peakRssMb: number } {
  const worker = fileURLToPath(import.meta.url);
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, worker, '--convert-only', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`conversion failed:\n${r.stderr}`);
  const field = (name: string): string => new RegExp(`${name}: (.*)`).exec(r.stderr)?.[1] ?? '';
  const [m, s] = field('Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)').split(':').map(Number);
  return { seconds: m! * 60 + s!, peakRssMb: Number(field('Maximum resident set size \\(kbytes\\)')) / 1024 };
}

function fused(path: string, cache: string): { path: string; fused: number } {
  const edit = cachedModelEdit({
    source: path,
    cacheDir: cache,
    label: 'unet-fused-attention',
    editKey: { fuseAttention: 1 },
    edit: (model) => {
      const f = fuseAttention(model);
      return { model: f.model, result: { fused: f.fused } };
    },
  });
  return { path: edit.path, fused: edit.result.fused };
}

const open = (path: string): Promise<ort.InferenceSession> => ort.InferenceSession.create(path, { graphOptimizationLevel: 'all', logSeverityLevel: 3 });

async function output(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  return (await session.run(feeds))[session.outputNames[0]!]!.data as Float32Array;
}

async function runGraph(path: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await open(path);
  try {
    return await output(session, feeds);
  } finally {
    await session.release();
  }
}

/**
 * Both UNets open at once, warmed up twice each (ONNX Runtime's first calls allocate), then
 * timed in alternation, so load from other jobs on the machine falls on both alike.
 */
async function timeUnets(paths: [string, string], feeds: Record<string, ort.Tensor>): Promise<Array<{ out: Float32Array; msPerCall: number[] }>> {
  const sessions = [await open(paths[0]), await open(paths[1])];
  try {
    const results = [];
    for (const s of sessions) {
      const out = await output(s, feeds);
      await s.run(feeds);
      results.push({ out, msPerCall: [] as number[] });
    }
    for (let i = 0; i < TIMED_RUNS; i++) {
      for (const [k, s] of sessions.entries()) {
        const t = performance.now();
        await s.run(feeds);
        results[k]!.msPerCall.push(performance.now() - t);
      }
    }
    return results;
  } finally {
    await Promise.all(sessions.map((s) => s.release()));
  }
}

function relToMax(a: Float32Array, b: Float32Array): { maxAbs: number; relToMax: number } {
  let maxAbs = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { maxAbs, relToMax: maxAbs / scale };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (process.argv[2] === '--convert-only') {
    await convertCheckpoint(CHECKPOINT, process.argv[3]!, { precision: 'fp32' });
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'diffuse-bench-convert-'));
  try {
    const converted = join(work, 'sd15');
    const conversion = measureConversion(converted);
    console.log(`conversion: ${conversion.seconds.toFixed(1)} s, peak RSS ${conversion.peakRssMb.toFixed(0)} MB`);
    const f32 = (data: Float32Array, dims: number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
    const ids = new ort.Tensor('int32', Int32Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406 : i < 12 ? 320 + 37 * i : 49407)), [1, 77]);
    const [text, textRef] = [await runGraph(join(converted, 'text_encoder', 'model.onnx'), { input_ids: ids }), await runGraph(join(OPTIMUM, 'text_encoder', 'model.onnx'), { input_ids: ids })];
    const latents = f32(inputs(4 * 32 * 32, 3), [1, 4, 32, 32]);
    const [vae, vaeRef] = [await runGraph(join(converted, 'vae_decoder', 'model.onnx'), { latent_sample: latents }), await runGraph(join(OPTIMUM, 'vae_decoder', 'model.onnx'), { latent_sample: latents })];
    const unetFeeds = { sample: f32(inputs(2 * 4 * 64 * 64, 1), [2, 4, 64, 64]), timestep: f32(Float32Array.of(981), [1]), encoder_hidden_states: f32(inputs(2 * 77 * 768, 2), [2, 77, 768]) };
    const graphs = join(work, 'graphs');
    const ours = fused(join(converted, 'unet', 'model.onnx'), graphs);
    const theirs = fused(join(OPTIMUM, 'unet', 'model.onnx'), graphs);
    const [unet, unetRef] = (await timeUnets([ours.path, theirs.path], unetFeeds)) as [{ out: Float32Array; msPerCall: number[] }, { out: Float32Array; msPerCall: number[] }];
    const report = {
      checkpoint: CHECKPOINT,
      conversion,
      textEncoder: relToMax(text, textRef),
      vaeDecoder256: relToMax(vae, vaeRef),
      unet512: relToMax(unet.out, unetRef.out),
      fusedAttention: { converted: ours.fused, optimum: theirs.fused },
      unetMsPerCall: { converted: median(unet.msPerCall), optimum: median(unetRef.msPerCall), fastest: { converted: Math.min(...unet.msPerCall), optimum: Math.min(...unetRef.msPerCall) }, runs: TIMED_RUNS, batch: 2 },
      loadAverage: loadavg(),
    };
    console.log(JSON.stringify(report, null, 2));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
