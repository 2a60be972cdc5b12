import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import sharp from 'sharp';
import { DIFFUSERS_ADAMW } from '../src/train/adamw.js';
import { OBJECT_TEMPLATES } from '../src/train/templates.js';
import { train } from '../src/train/trainer.js';
import { readPeakRssMb } from './proc.js';
import { benchCache } from './settings.js';

/**
 * Seconds per textual-inversion step, diffuse (ONNX Runtime) beside diffusers' training step on
 * PyTorch CPU (tools/bench_train_torch.py: the loop body of examples/textual_inversion/
 * textual_inversion.py), on the same full-size SD 1.5 random weights, batch 1, 2 threads.
 * Runs alternate (diffuse 256², torch 256², diffuse 512², torch 512²), one process each so the
 * peak RSS is that run's; the load average is read before each.
 *
 *   npm run build && node dist/bench/train.js --steps 4 [--sizes 256,512]
 *   node dist/bench/train.js --worker --resolution 256 --steps 4     (one diffuse run, JSON out)
 */
const { values } = parseArgs({
  options: {
    worker: { type: 'boolean', default: false },
    resolution: { type: 'string', default: '256' },
    steps: { type: 'string', default: '4' },
    sizes: { type: 'string', default: '256,512' },
    threads: { type: 'string', default: '2' },
    onnx: { type: 'string', default: join(benchCache(), 'sd15/onnx') },
    torch: { type: 'string', default: join(benchCache(), 'sd15/torch') },
  },
});

/** Three pictures of the kind people train on (not square, larger than the training size). */
async function pictures(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (const [i, [w, h]] of [[640, 560], [600, 720], [700, 700]].entries()) {
    const data = Buffer.alloc(w! * h! * 3);
    for (let p = 0; p < data.length; p++) data[p] = (Math.sin(p * 0.0007 * (i + 1)) * 100 + 128 + ((p * 2654435761) % 23)) & 255;
    await sharp(data, { raw: { width: w!, height: h!, channels: 3 } }).png().toFile(join(dir, `${i}.png`));
  }
}

async function worker(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-bench-train-'));
  await pictures(join(dir, 'images'));
  const seconds: number[] = [];
  const started = performance.now();
  let firstStepAt = 0;
  await train(
    {
      modelDir: values.onnx!, imagesDir: join(dir, 'images'), token: '<bench>', initWord: 'cat', vectors: 1, templates: OBJECT_TEMPLATES,
      resolution: Number(values.resolution), centerCrop: false, flipP: 0.5, steps: Number(values.steps), lr: '0.005', lrSchedule: 'constant', lrWarmup: 0,
      batchSize: 1, gradientAccumulation: 1, adamw: DIFFUSERS_ADAMW, seed: 1, saveEvery: 0, previewEvery: 0, outputDir: join(dir, 'out'),
      overwrite: false, resume: false, device: 'cpu', threads: Number(values.threads), graphCache: join(benchCache(), 'graphs'),
    },
    {
      onEvent: (e) => {
        if (e.kind === 'step') {
          if (seconds.length === 0) firstStepAt = (performance.now() - started) / 1000 - e.seconds;
          seconds.push(e.seconds);
        }
      },
      stopRequested: () => false,
    },
  );
  process.stdout.write(`${JSON.stringify({ tool: 'diffuse', resolution: Number(values.resolution), setup: firstStepAt, seconds, peakRssMb: readPeakRssMb(process.pid) })}\n`);
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

function run(command: string, args: string[]): Record<string, unknown> {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

async function compare(): Promise<void> {
  const rows: string[] = [];
  for (const size of values.sizes!.split(',')) {
    for (const tool of ['diffuse', 'torch']) {
      const load = loadavg().map((l) => l.toFixed(1)).join(' ');
      const result =
        tool === 'diffuse'
          ? run(process.execPath, [process.argv[1]!, '--worker', '--resolution', size, '--steps', values.steps!, '--threads', values.threads!, '--onnx', values.onnx!])
          : run('/opt/diffuse-venv/bin/python', ['tools/bench_train_torch.py', '--model', values.torch!, '--resolution', size, '--steps', values.steps!, '--threads', values.threads!]);
      const seconds = result.seconds as number[];
      const later = seconds.length > 1 ? seconds.slice(1) : seconds;
      const row = `| ${size}² | ${tool === 'diffuse' ? 'diffuse (ONNX Runtime)' : 'diffusers step (PyTorch)'} | ${median(later).toFixed(1)} s | ${seconds[0]!.toFixed(1)} s | ${(result.setup as number).toFixed(0)} s | ${((result.peakRssMb as number) / 1024).toFixed(2)} GB | ${load} |`;
      console.log(row);
      rows.push(row);
    }
  }
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:]/g, '').replace('T', 'T');
  const out = join('bench/results', `train-${stamp}.md`);
  writeFileSync(
    out,
    `# embed-train step time, ${new Date().toISOString()}\n\nFull-size SD 1.5 (random weights), batch 1, ${values.threads} threads, ${values.steps} steps per run; median of the steps after the first.\n\n| size | tool | s / step | first step | setup before it | peak RSS | load average (1, 5, 15 min) before the run |\n| --- | --- | --- | --- | --- | --- | --- |\n${rows.join('\n')}\n`,
  );
  console.log(`written ${out}`);
}

await (values.worker ? worker() : compare());
