import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pilResize } from '../src/image/pil-resample.js';
import type { Raster } from '../src/image/raster.js';
import { loadUpscaler, upscaleRaster } from '../src/pipeline/upscale/index.js';
import { cpuLine, describeCpu } from './cpu.js';
import { writeResults } from './results-file.js';

/**
 * `diffuse upscale`'s cost at full size: a 512x512 picture to 2048x2048 through the RealESRGAN_x4plus
 * architecture (RRDBNet 64 features, 23 blocks; random weights: the work is the same), tiled as A1111 tiles
 * it (192-pixel tiles, overlap 8: 9 tiles), 2 threads; wall time, time per tile, and the process's peak RSS
 * (the output picture is 12 MB; the rest is ONNX Runtime's activations for one tile). Then --tile 256/16 and
 * --tile 128 for the memory/time trade, each in its own process (the peak RSS is the process's). Writes
 * bench/results/upscale-<date>-<cpu>.{json,md} (not with --no-write).
 *
 *   /opt/diffuse-venv/bin/python tools/make_upscale_fixture.py --bench     (once: writes the 67 MB graph)
 *   npx tsc -p . && node dist/bench/upscale.js [tile overlap] [--no-write]
 */

const CACHE = process.env.DIFFUSE_BENCH_CACHE ?? join(process.env.HOME ?? '', '.cache', 'diffuse-bench');
const MODEL = join(CACHE, 'upscale', 'rrdb-x4plus-random.onnx');

/** A photo-like 512x512 picture: smooth fields with edges (content does not change the cost). */
function picture(size: number): Raster {
  const small: Raster = { width: 64, height: 64, channels: 3, data: new Uint8Array(64 * 64 * 3) };
  let s = 7;
  for (let i = 0; i < small.data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    small.data[i] = s >>> 24;
  }
  return pilResize(small, size, size, 'bicubic');
}

async function main(): Promise<void> {
  const [tile = 192, overlap = 8] = process.argv.slice(2).filter((a) => a !== '--no-write').map(Number);
  const u = await loadUpscaler(MODEL, { device: 'cpu', threads: 2 });
  try {
    const src = picture(512);
    const load = [loadavg()[0]!];
    let tiles = 0;
    const started = performance.now();
    const out = await upscaleRaster(u, src, { tile, overlap, width: 2048, height: 2048, onTile: (done) => (tiles = done) });
    const seconds = (performance.now() - started) / 1000;
    load.push(loadavg()[0]!);
    const peakMb = process.resourceUsage().maxRSS / 1024;
    const line =
      `upscale 512x512 -> ${out.width}x${out.height}, RRDBNet x4plus (random weights), tile ${tile} overlap ${overlap}: ${tiles} tiles, ` +
      `${seconds.toFixed(1)} s (${(seconds / tiles).toFixed(1)} s per tile), peak RSS ${peakMb.toFixed(0)} MB, 2 threads, load average ${load.map((l) => l.toFixed(1)).join(' -> ')}`;
    console.log(line);
    if (!process.argv.includes('--no-write')) {
      writeResults('upscale-', 'Upscale', `${line}\n\nCPU: ${cpuLine(describeCpu())}.`, { tile, overlap, tiles, seconds, peakRssMb: peakMb, load, cpu: describeCpu() });
    }
  } finally {
    await u.release();
  }
}

await main();
