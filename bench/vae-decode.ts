import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureConvertedVae } from '../src/graphs/vae-convert.js';
import { openSession } from '../src/onnx/session.js';
import { VaeDecoder } from '../src/pipeline/vae.js';
import { readJson } from '../test/helpers/fixtures.js';
import { checkpointBytes, type Recipe } from '../test/helpers/synthetic-checkpoint.js';
import { VAE_FIXTURES } from '../test/helpers/vae-files.js';

/**
 * What `--vae taesd` (and a TAESD preview) saves: SD 1.5's VAE decoder (optimum's export of the
 * benchmark's full-size random-weight SD 1.5) against TAESD at its real size (64 channels, the
 * test fixture's full-width recipe, converted by src/graphs), both through the pipeline's
 * VaeDecoder on the same 64x64 latents (a 512x512 image), 2 threads, alternating one call each
 * for `RUNS` rounds after a warm-up call of each; medians, their ratio and the load average.
 *
 *   npx tsc -p . && node dist/bench/vae-decode.js      (needs tools/make_bench_models.py's sd15/onnx/)
 */

const CACHE = process.env.DIFFUSE_BENCH_CACHE ?? join(process.env.HOME ?? '', '.cache', 'diffuse-bench');
const FULL_VAE = join(CACHE, 'sd15', 'onnx', 'vae_decoder', 'model.onnx');
const RUNS = 5;

function latents(count: number): Float32Array {
  let s = 12345;
  return Float32Array.from({ length: count }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 31 - 1) * 3;
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'diffuse-vae-bench-'));
  try {
    const decoderFile = join(work, 'taesd_decoder.safetensors');
    writeFileSync(decoderFile, checkpointBytes(readJson<Recipe>(join(VAE_FIXTURES, 'taesd_decoder.recipe.json.gz'))));
    const taesdDir = await ensureConvertedVae(decoderFile, join(work, 'cache'));
    const settings = { device: 'cpu' as const, threads: 2 };
    const decoders = {
      'SD 1.5 VAE': new VaeDecoder(await openSession(FULL_VAE, settings)),
      TAESD: new VaeDecoder(await openSession(join(taesdDir, 'vae_decoder', 'model.onnx'), settings)),
    };
    const z = latents(4 * 64 * 64);
    const times: Record<string, number[]> = { 'SD 1.5 VAE': [], TAESD: [] };
    const load = [loadavg()[0]!];
    for (const decoder of Object.values(decoders)) await decoder.decode(z, [4, 64, 64]);
    for (let round = 0; round < RUNS; round++) {
      for (const [name, decoder] of Object.entries(decoders)) {
        const started = performance.now();
        const out = await decoder.decode(z, [4, 64, 64]);
        times[name]!.push(performance.now() - started);
        if (out.width !== 512 || out.height !== 512) throw new Error(`${name} decoded ${out.width}x${out.height}`);
      }
    }
    load.push(loadavg()[0]!);
    const full = median(times['SD 1.5 VAE']!);
    const tiny = median(times.TAESD!);
    for (const [name, t] of Object.entries(times)) process.stdout.write(`${name.padEnd(11)} median ${median(t).toFixed(0)} ms  (${t.map((x) => x.toFixed(0)).join(', ')})\n`);
    process.stdout.write(`TAESD / SD 1.5 VAE: ${(tiny / full).toFixed(3)} (${(full / tiny).toFixed(1)}x faster); load average ${load.map((l) => l.toFixed(2)).join(' -> ')}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
