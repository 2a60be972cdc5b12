import { loadavg } from 'node:os';
import { join } from 'node:path';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { GenerationRequest, HiresUpscaler, PipelineEvent } from '../src/pipeline/types.js';
import { resolveSampler } from '../src/schedulers/index.js';

/**
 * Hires fix 512 -> 1024 on full-size SD 1.5 (tools/make_bench_models.py's sd15/onnx/: real
 * architecture, random weights), the whole image through loadModel + generate as the CLI runs it
 * (attention fused, optimised-graph cache): Euler, CFG 7, 20 first-pass steps, --hires-scale 2,
 * strength 0.7, hires steps 0 (20 more at 1024², from a 28-step schedule), the latent upscaler and
 * Lanczos (decode, resize, encode); a plain 512² txt2img of the same settings beside it; 2 threads.
 * Wall time per stage (first pass, second pass, decode) and the load average before and after.
 *
 *   npx tsc -p . && node dist/bench/hires.js [steps]      (needs sd15/onnx/; several minutes per image on 2 cores)
 */

const CACHE = process.env.DIFFUSE_BENCH_CACHE ?? join(process.env.HOME ?? '', '.cache', 'diffuse-bench');
const MODEL = join(CACHE, 'sd15', 'onnx');
const STEPS = Number(process.argv[2] ?? 20);

async function main(): Promise<void> {
  const bundle = await loadModel(MODEL, {
    device: 'cpu',
    threads: 2,
    withEncoder: true,
    fuseAttention: true,
    optimizedCache: join(CACHE, 'optimized'),
  });
  try {
    const base: GenerationRequest = {
      prompt: 'a lighthouse on a cliff at dusk',
      negativePrompt: '',
      steps: STEPS,
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
    const runs: [string, GenerationRequest][] = [
      ['plain 512', base],
      ...(['latent', 'lanczos'] as HiresUpscaler[]).map((upscaler): [string, GenerationRequest] => [`hires ${upscaler} 512->1024`, { ...base, hires: { target: { scale: 2 }, upscaler, strength: 0.7 } }]),
    ];
    const load = [loadavg()[0]!];
    for (const [name, request] of runs) {
      const marks: number[] = [];
      const listener = (e: PipelineEvent) => {
        if (e.kind === 'pass') marks.push(performance.now());
      };
      const started = performance.now();
      const result = await generate(bundle, request, listener);
      const total = (performance.now() - started) / 1000;
      const { width, height } = result.images[0]!.image;
      const passes = marks.length === 2 ? ` (first pass ${((marks[1]! - marks[0]!) / 1000).toFixed(1)} s, second pass and decode ${((started + total * 1000 - marks[1]!) / 1000).toFixed(1)} s)` : '';
      process.stdout.write(`${name.padEnd(24)} ${width}x${height}: ${total.toFixed(1)} s${passes}\n`);
    }
    load.push(loadavg()[0]!);
    process.stdout.write(`load average ${load.map((l) => l.toFixed(2)).join(' -> ')}\n`);
  } finally {
    await bundle.release();
  }
}

await main();
