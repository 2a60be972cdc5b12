/**
 * Where the UNet's time goes in ONNX Runtime, and what an optimised-model cache would save at load:
 * opens the benchmark's SD 1.5 UNet as diffuse does (all graph optimisations), runs one CFG
 * step (batch 2) to warm up and one with ORT's profiler on, and prints the time per operator type.
 * --timestep and --daz (denormals as zero) test whether the step time depends on the data.
 * With --cache it also saves the optimised graph and times opening that with optimisations off.
 *
 * --graph profiles another UNet graph with the same inputs (the fused or int8 one from the graph cache).
 * --nodes <op> also lists each node of that operator type with its time (which attention blocks cost what).
 *
 *   npm run build && node dist/bench/profile-unet.js [--size 512] [--threads 2] [--timestep 500] [--daz] [--cache] [--graph path/model.onnx] [--nodes MultiHeadAttention]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { SD15_ONNX } from './peers.js';
import { benchCache } from './settings.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '512' },
    threads: { type: 'string', default: '2' },
    timestep: { type: 'string', default: '500' },
    // ORT's session.set_denormal_as_zero: tells whether denormal floats slow a run down.
    daz: { type: 'boolean', default: false },
    cache: { type: 'boolean', default: false },
    graph: { type: 'string' },
    nodes: { type: 'string' },
  },
});
const size = Number(values.size);
const threads = Number(values.threads);
const unetPath = values.graph ?? join(SD15_ONNX, 'unet', 'model.onnx');

interface ProfileEvent { cat: string; name: string; dur: number; ts: number; args?: { op_name?: string } }

function feeds(): Record<string, ort.Tensor> {
  const latent = size / 8;
  const sample = new Float32Array(2 * 4 * latent * latent).map(() => Math.random() * 2 - 1);
  const context = new Float32Array(2 * 77 * 768).map(() => Math.random() * 2 - 1);
  return {
    sample: new ort.Tensor('float32', sample, [2, 4, latent, latent]),
    timestep: new ort.Tensor('float32', new Float32Array([Number(values.timestep)]), [1]),
    encoder_hidden_states: new ort.Tensor('float32', context, [2, 77, 768]),
  };
}

async function timedCreate(path: string, options: ort.InferenceSession.SessionOptions): Promise<[ort.InferenceSession, number]> {
  const t0 = performance.now();
  const daz = values.daz ? { extra: { session: { set_denormal_as_zero: '1' } } } : {};
  const session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, logSeverityLevel: 3, ...daz, ...options });
  return [session, (performance.now() - t0) / 1000];
}

/** Kernel time per operator type in the last run the profile holds. */
function opTable(profilePath: string): string {
  const events = JSON.parse(readFileSync(profilePath, 'utf8')) as ProfileEvent[];
  const after = Math.max(...events.filter((e) => e.name === 'model_run').map((e) => e.ts));
  const byOp = new Map<string, { us: number; count: number }>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < after) continue;
    const op = e.args?.op_name ?? '?';
    const entry = byOp.get(op) ?? { us: 0, count: 0 };
    entry.us += e.dur;
    entry.count += 1;
    byOp.set(op, entry);
    total += e.dur;
  }
  const rows = [...byOp.entries()].sort((a, b) => b[1].us - a[1].us);
  const lines = rows.map(([op, { us, count }]) => `| ${op} | ${count} | ${(us / 1e6).toFixed(2)} | ${((100 * us) / total).toFixed(1)} % |`);
  const table = [`kernel time ${(total / 1e6).toFixed(2)} s`, '| op | nodes | s | share |', '| --- | --- | --- | --- |', ...lines];
  if (values.nodes === undefined) return table.join('\n');
  const nodes = events.filter((e) => e.cat === 'Node' && e.ts >= after && e.name.endsWith('_kernel_time') && e.args?.op_name === values.nodes);
  const nodeLines = nodes.map((e) => `| ${e.name.replace(/_kernel_time$/, '')} | ${(e.dur / 1e3).toFixed(1)} |`);
  return [...table, '', `| ${values.nodes} node | ms |`, '| --- | --- |', ...nodeLines].join('\n');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(benchCache(), 'profile-'));
  try {
    const [session, loadS] = await timedCreate(unetPath, { graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: join(dir, 'unet') });
    const input = feeds();
    const t0 = performance.now();
    await session.run(input);
    const warmS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await session.run(input);
    const runS = (performance.now() - t1) / 1000;
    (session as unknown as { endProfiling(): void }).endProfiling();
    await session.release();
    // onnxruntime-node returns nothing from endProfiling; the file is <prefix>_<timestamp>.json.
    const profile = readdirSync(dir).find((f) => f.startsWith('unet') && f.endsWith('.json'));
    if (!profile) throw new Error(`no profile written in ${dir}`);
    console.log(`UNet ${size}x${size}, batch 2, t=${values.timestep}, daz ${values.daz}, ${threads} threads: open ${loadS.toFixed(1)} s, first run ${warmS.toFixed(2)} s, second run ${runS.toFixed(2)} s`);
    console.log(opTable(join(dir, profile)));
    if (values.cache) {
      const optimized = join(dir, 'unet-optimized.onnx');
      const [saving, saveS] = await timedCreate(unetPath, {
        graphOptimizationLevel: 'all',
        optimizedModelFilePath: optimized,
        extra: { session: { optimized_model_external_initializers_file_name: 'unet-optimized.onnx_data', optimized_model_external_initializers_min_size_in_bytes: '1024' } },
      });
      await saving.release();
      const [cached, cachedS] = await timedCreate(optimized, { graphOptimizationLevel: 'disabled' });
      // The cache is only worth having if the saved graph runs as fast as a freshly optimised one.
      const runs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await cached.run(input);
        runs.push((performance.now() - t) / 1000);
      }
      await cached.release();
      console.log(`open with all optimisations + save: ${saveS.toFixed(1)} s; open the saved optimised graph, optimisations off: ${cachedS.toFixed(1)} s; its runs ${runs.map((r) => r.toFixed(2)).join(' ')} s`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
