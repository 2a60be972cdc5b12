import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { killReason } from '../bench/measure.js';
import { choosePeers, parseSdCppLog, PEERS } from '../bench/peers.js';
import { combineRuns, markdownTable, withReference, type Summary } from '../bench/report.js';
import { cpuTag } from '../bench/cpu.js';
import { clearOutput, outputDistance } from '../bench/compare.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The bench's bookkeeping (no timing is measured here): repeated runs combined into one row, the
 * reason a killed tool is reported with, and --only's order.
 */
const run = (tool: string, stepMedianS: number | undefined, extra: Partial<Summary> = {}): Summary => ({
  tool,
  size: '512x512',
  load: '1.00 → 1.20',
  ...(stepMedianS === undefined ? { note: 'skipped: exit 1: boom' } : { stepMedianS, stepBestS: stepMedianS - 0.5, peakRssMb: 1000 + stepMedianS, runtime: 'onnxruntime-node 1.30.0' }),
  ...extra,
});

test('repeated runs: medians of the runs, best of the best steps, the spread of the run medians, failures kept', () => {
  const rows = combineRuns([run('diffuse', 10), run('optimum', 12), run('diffuse', 14), run('optimum', undefined), run('diffuse', 11)]);
  assert.is(rows.length, 2);
  const d = rows.find((r) => r.tool === 'diffuse')!;
  assert.is(d.stepMedianS, 11);
  assert.is(d.stepBestS, 9.5);
  assert.equal(d.stepSpread, [10, 14]);
  assert.is(d.runs, 3);
  assert.is(d.peakRssMb, 1011);
  assert.is(d.runtime, 'onnxruntime-node 1.30.0');
  assert.is(d.note, '3 of 3 runs finished');
  const o = rows.find((r) => r.tool === 'optimum')!;
  assert.is(o.stepMedianS, 12);
  assert.equal(o.stepSpread, [12, 12]);
  assert.match(o.note!, /^1 of 2 runs finished; skipped: exit 1: boom$/);
  const table = markdownTable(rows);
  assert.match(table, /\| diffuse \| 512x512 \| 11\.00 \| 10\.00–14\.00 \(3\) \|/);
  assert.match(table, /onnxruntime-node 1\.30\.0/);
});

test('a single run is its own row, without a spread', () => {
  const [only] = combineRuns([run('diffuse', 10)]);
  assert.is(only!.stepSpread, undefined);
  assert.match(markdownTable([only!]), /\| diffuse \| 512x512 \| 10\.00 \| — \|/);
});

test("a killed tool says who stopped it: the bench's timeout, or a SIGKILL from elsewhere (the OOM killer)", () => {
  assert.is(killReason('SIGKILL', true, 1800), 'stopped by the bench after 1800 s (--timeout)');
  assert.match(killReason('SIGKILL', false, 1800), /not sent by the bench \(out of memory\? see dmesg\)/);
  assert.is(killReason('SIGSEGV', false, 1800), 'killed by SIGSEGV');
});

test('--only runs the tools in the order given and names a tool it does not know', () => {
  assert.equal(choosePeers('optimum (same ORT),diffuse,optimum (ORT)').map((p) => p.name), ['optimum (same ORT)', 'diffuse', 'optimum (ORT)']);
  assert.throws(() => choosePeers('diffuse,optimum'), /no tool named 'optimum'/);
  assert.ok(PEERS.some((p) => p.name === 'optimum (same ORT)'));
});

test('an option row is given as ratios to its reference run of the same turn, and the medians of those over the runs', () => {
  const off = [run('diffuse', 10, { wholeImageS: 100 }), run('diffuse', 20, { wholeImageS: 200 })];
  const cached = [run('diffuse deep-cache 2', 6, { wholeImageS: 55 }), run('diffuse deep-cache 2', 10, { wholeImageS: 120 })];
  const paired = cached.map((c, i) => withReference(c, off[i]!, { latentCosine: 0.99, psnrDb: 30 + i }));
  assert.is(paired[0]!.stepRatio, 0.6);
  assert.is(paired[0]!.wholeImageRatio, 0.55);
  const [row] = combineRuns(paired);
  assert.is(row!.reference, 'diffuse');
  assert.is(row!.stepRatio, 0.55);
  assert.is(row!.wholeImageRatio, 0.575);
  assert.is(row!.psnrDb, 30.5);
  assert.match(markdownTable([row!]), /\| diffuse: 0\.550, 0\.575, 0\.99000, 30\.5 dB \|/);
  assert.match(markdownTable([withReference(cached[0]!, off[0]!)]), /diffuse: 0\.600, 0\.550, outputs not compared/);
  const same = combineRuns(cached.map((c, i) => withReference(c, off[i]!, { latentCosine: 1, psnrDb: Infinity })));
  assert.match(markdownTable(same), /diffuse: 0\.550, 0\.575, 1\.00000, identical image/);
  assert.match(markdownTable(off), /\| — \| 1\.00 → 1\.20 \|/);
});

test('outputs compared: cosine of the latents, PSNR of the image; absent or mismatched outputs give none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-compare-'));
  try {
    const write = (base: string, latents: number[], rgb: number[]): void => {
      writeFileSync(`${base}.latents`, new Uint8Array(new Float32Array(latents).buffer));
      writeFileSync(`${base}.rgb`, new Uint8Array(rgb));
    };
    write(join(dir, 'a'), [1, 0, 0], [10, 20, 30, 40]);
    write(join(dir, 'b'), [1, 1, 0], [10, 20, 30, 50]);
    const d = outputDistance(join(dir, 'b'), join(dir, 'a'))!;
    assert.ok(Math.abs(d.latentCosine - Math.SQRT1_2) < 1e-7);
    // One of four pixels off by 10: MSE 25.
    assert.ok(Math.abs(d.psnrDb - 10 * Math.log10(255 ** 2 / 25)) < 1e-9);
    write(join(dir, 'c'), [1, 0], [10, 20, 30, 40]);
    assert.is(outputDistance(join(dir, 'c'), join(dir, 'a')), undefined);
    clearOutput(join(dir, 'b'));
    assert.is(outputDistance(join(dir, 'b'), join(dir, 'a')), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('results files are named by the CPU: family, model and the instruction-set class that picks the kernels', () => {
  const cpu = (features: string[], extra = {}) => ({ model: 'AMD EPYC', family: '25', modelNumber: '17', features, int8Format: 'u8s8', ...extra });
  assert.is(cpuTag(cpu(['avx2', 'fma', 'avx512f', 'avx512_vnni'])), 'epyc-f25m17-avx512vnni');
  assert.is(cpuTag(cpu(['avx2', 'fma'], { modelNumber: '1' })), 'epyc-f25m1-avx2');
  assert.is(cpuTag(cpu(['avx2', 'avx_vnni'], { model: 'Intel(R) Core(TM) i7-12700' })), 'core-f25m17-avxvnni');
  assert.is(cpuTag(cpu(['avx2', 'avx512f', 'avx512_vnni', 'amx_int8'], { model: 'Intel(R) Xeon(R) Processor', family: '6', modelNumber: '167' })), 'xeon-f6m167-amx');
  assert.is(cpuTag({ model: 'unknown', features: [], int8Format: 'u8u8' }), 'cpu-noavx2');
});

test('option rows name the row they are compared with; DeepCache rows exist for each interval', async () => {
  const names = PEERS.map((p) => p.name);
  for (const p of PEERS.filter((p) => p.reference)) assert.ok(names.includes(p.reference!), `${p.name}'s reference ${p.reference}`);
  assert.is(PEERS.find((p) => p.name === 'diffuse deep-cache 3')?.reference, 'diffuse');
  assert.is(PEERS.find((p) => p.name === 'diffuse LCM int8')?.reference, 'diffuse LCM');
  assert.is(PEERS.find((p) => p.name === 'diffuse')?.reference, undefined);
  assert.match(JSON.stringify(await PEERS.find((p) => p.name === 'diffuse deep-cache 5')!.command({ model: '', width: 8, height: 8, steps: 1, cfg: 1, threads: 1, seed: 1 })), /deepCache\\":5/);
  // ControlNet rows run on diffuse's conversion (its UNet takes residuals), so they are compared with that conversion run plain.
  assert.is(PEERS.find((p) => p.name === 'diffuse controlnet')?.reference, 'diffuse converted');
  const two = JSON.parse((await PEERS.find((p) => p.name === 'diffuse controlnet x2')!.command({ model: '', width: 8, height: 8, steps: 1, cfg: 1, threads: 1, seed: 1 })).argv[1]!) as Record<string, unknown>;
  assert.equal([two['converted'], two['controlnets']], [true, 2]);
});

test("stable-diffusion.cpp's figures are read from its log lines (sd-cli 97d29908, the SDXL run of bench/results/2026-12-07T0523)", () => {
  // Real lines of that run (its progress bar redraws with a carriage return).
  const log = [
    '[INFO ] model_loader.cpp:1304 - loading tensors completed, taking 17.86s (read: 8.06s, memcpy: 0.00s, convert: 9.21s, copy_to_backend: 0.00s)',
    '[INFO ] stable-diffusion.cpp:5296 - get_learned_condition completed, taking 25.85s',
    '\r  |==================================================| 1/1 - 504.37s/it\u001b[K',
    '[INFO ] stable-diffusion.cpp:5711 - sampling completed, taking 504.44s',
    '[INFO ] stable-diffusion.cpp:5391 - decode_first_stage completed, taking 218.16s',
    '[INFO ] stable-diffusion.cpp:5861 - generate_image completed in 748.56s',
  ].join('\n');
  const r = parseSdCppLog(log);
  assert.equal([r.load_s, r.text_encoder_s, r.step_s, r.vae_decode_s, r.total_s], [17.86, 25.85, [504.37], 218.16, 748.56]);
  // Fast steps are printed as it/s.
  assert.equal(parseSdCppLog(log.replace('504.37s/it', '2.00it/s')).step_s, [0.5]);
  assert.throws(() => parseSdCppLog(log.replace(/generate_image.*/, '')), /generate_image/);
});

test.run();
