import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyLoras } from '../src/graphs/lora/apply-loras.js';
import { loraTargets } from '../src/graphs/lora/lora-targets.js';
import { floatToHalf } from '../src/onnx/dtype.js';
import { ModelProto } from '../src/onnx/proto.js';

/**
 * Merging a full-size LoRA into full-size SD 1.5 (optimum's export in $DIFFUSE_BENCH_CACHE, random
 * weights), F16 files as shared ones are: a kohya LoRA of rank 32 on the attention, feed-forward and
 * projection layers and the text encoder (the common kind), and the same with rank-16 LoCon on every
 * other convolution and linear layer too (the worst case: every weight of the UNet is rewritten).
 * Time and peak RSS (/usr/bin/time -v around a child that only merges) of the first load, which
 * merges and caches, and of a second, which finds the cache.
 *
 *   npx tsc -p . && node dist/bench/lora-merge.js     (needs tools/make_bench_models.py's sd15/onnx)
 */

const CACHE = process.env.DIFFUSE_BENCH_CACHE ?? join(process.env.HOME ?? '', '.cache', 'diffuse-bench');
const MODEL = join(CACHE, 'sd15', 'onnx');

/** A kohya LoCon file for every target of the export's UNet and text encoder, values small and deterministic. */
/** Layers of the common kind of LoRA (kohya's default "LierLa": linear layers and 1x1 projections). */
const LIERLA = /(attn[12]_to_(q|k|v|out_0)|ff_net_(0_proj|2)|proj_(in|out)|self_attn_(q|k|v|out)_proj|mlp_fc[12])$/;

function writeLora(path: string, everyLayer: boolean): { bytes: number; modules: number } {
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let s = 12345;
  const add = (key: string, shape: number[]) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const half = new Uint16Array(count);
    for (let i = 0; i < count; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      half[i] = floatToHalf((s / 2 ** 32 - 0.5) * 0.02);
    }
    const data = new Uint8Array(half.buffer);
    header[key] = { dtype: 'F16', shape, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  };
  let modules = 0;
  for (const [part, prefix] of [['unet', 'lora_unet_'], ['text_encoder', 'lora_te_']] as const) {
    const targets = loraTargets(ModelProto.decode(readFileSync(join(MODEL, part, 'model.onnx'))).graph, prefix);
    const seen = new Set<unknown>();
    for (const [name, t] of targets) {
      if (seen.has(t) || (!everyLayer && !LIERLA.test(name))) continue;
      seen.add(t);
      modules++;
      const [out, inner, kh, kw] = t.torchShape as [number, number, number?, number?];
      const rank = LIERLA.test(name) ? 32 : 16;
      add(`${name}.lora_down.weight`, kh === undefined ? [rank, inner] : [rank, inner, kh, kw!]);
      add(`${name}.lora_up.weight`, kh === undefined ? [out, rank] : [out, rank, 1, 1]);
      add(`${name}.alpha`, []);
    }
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const text = new TextEncoder().encode(json);
  const file = new Uint8Array(8 + text.length + offset);
  new DataView(file.buffer).setBigUint64(0, BigInt(text.length), true);
  file.set(text, 8);
  let at = 8 + text.length;
  for (const c of chunks) {
    file.set(c, at);
    at += c.length;
  }
  writeFileSync(path, file);
  return { bytes: file.length, modules };
}

function timedChild(lora: string, graphs: string): { seconds: number; peakRssMb: number } {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, fileURLToPath(import.meta.url), '--merge-only', lora, graphs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`merge failed:\n${r.stderr}`);
  const field = (name: string): string => new RegExp(`${name}: (.*)`).exec(r.stderr)?.[1] ?? '';
  const parts = field('Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\)').split(':').map(Number);
  const seconds = parts.reduce((t, p) => t * 60 + p, 0);
  return { seconds, peakRssMb: Number(field('Maximum resident set size \\(kbytes\\)')) / 1024 };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--merge-only') {
    await applyLoras({ textEncoder: join(MODEL, 'text_encoder', 'model.onnx'), unet: join(MODEL, 'unet', 'model.onnx') }, [{ path: process.argv[3]!, te: 1, unet: 1 }], { textWidth: 768, sdxl: false }, process.argv[4]!);
    return;
  }
  if (!existsSync(join(MODEL, 'unet', 'model.onnx'))) throw new Error(`no ${MODEL}: run tools/make_bench_models.py first`);
  const work = mkdtempSync(join(tmpdir(), 'lora-bench-'));
  try {
    console.log('| LoRA | load | time | peak RSS |\n| --- | --- | --- | --- |');
    const before = loadavg()[0]!;
    for (const everyLayer of [false, true]) {
      const lora = join(work, everyLayer ? 'locon.safetensors' : 'lora.safetensors');
      const { bytes, modules } = writeLora(lora, everyLayer);
      const label = `${everyLayer ? 'LoCon, every layer' : 'LoRA, attention/ff/proj + text'}: ${modules} modules, ${(bytes / 2 ** 20).toFixed(0)} MB`;
      const graphs = join(work, `graphs-${everyLayer}`);
      const cold = timedChild(lora, graphs);
      const warm = timedChild(lora, graphs);
      console.log(`| ${label} | first (merges, writes the cache) | ${cold.seconds.toFixed(1)} s | ${cold.peakRssMb.toFixed(0)} MB |`);
      console.log(`| | second (cache hit) | ${warm.seconds.toFixed(1)} s | ${warm.peakRssMb.toFixed(0)} MB |`);
      rmSync(graphs, { recursive: true, force: true });
    }
    console.log(`load average ${before.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
