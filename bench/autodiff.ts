import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { cachedModelEdit } from '../src/onnx/edited-model-cache.js';
import { GRADIENT_GRAPH_VERSION, buildGradientGraph, type GradientGraphInfo, type GradientGraphOptions } from '../src/train/autodiff/gradient-graph.js';
import { readPeakRssMb } from './proc.js';
import { benchCache } from './settings.js';

/**
 * Forward+backward time and peak memory of a UNet's gradient graph (src/train/autodiff): the
 * MSE loss built in, gradients w.r.t. encoder_hidden_states (what textual inversion needs) and
 * optionally the latents. Run one configuration per process, so VmHWM is that run's peak:
 *
 *   npm run build && node dist/bench/autodiff.js --unet ~/.cache/diffuse-bench/sd15/onnx/unet --latent 32
 *   node dist/bench/autodiff.js --unet <dir> --latent 32 --mode forward     (the plain forward, for comparison)
 *   ... --no-prepack      ONNX Runtime's session.disable_prepacking: weights are not copied into
 *                         packed layouts per consuming node (forward and backward both read each weight)
 *   ... --no-arena        ONNX Runtime's CPU arena off (its power-of-two growth hides what is really in use)
 *   ... --opt-level extended   no NCHWc layout pass: 'all' gives each forward Conv a reordered copy
 *                         of its weight while the backward's ConvTranspose reads the original
 *
 * The gradient graph is built once per model and options into $DIFFUSE_BENCH_CACHE/graphs,
 * hard-linking the model's external weights, as the trainer will through the same cache.
 */

const { values } = parseArgs({
  options: {
    unet: { type: 'string', default: 'test/fixtures/tiny-sd/unet' },
    latent: { type: 'string', default: '16' },
    batch: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    threads: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'gradient' },
    'wrt-sample': { type: 'boolean', default: false },
    'no-prepack': { type: 'boolean', default: false },
    'no-arena': { type: 'boolean', default: false },
    'opt-level': { type: 'string', default: 'all' },
  },
});

const latent = Number(values.latent);
const batch = Number(values.batch);
const source = join(values.unet!, 'model.onnx');
if (!existsSync(source)) throw new Error(`no UNet at ${source}`);
const hidden = 768;

async function inputWidth(): Promise<number> {
  // encoder_hidden_states' width from the graph itself (32 for the tiny fixtures, 768 for SD 1.x).
  const probe = await ort.InferenceSession.create(source, { executionProviders: ['cpu'], logSeverityLevel: 3, graphOptimizationLevel: 'disabled' });
  const meta = probe.inputMetadata.find((m) => m.name === 'encoder_hidden_states');
  await probe.release();
  const width = meta?.isTensor ? meta.shape[2] : undefined;
  return typeof width === 'number' ? width : hidden;
}

function randomTensor(dims: number[], seed: number): ort.Tensor {
  let s = seed;
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 30 - 1));
  return new ort.Tensor('float32', data, dims);
}

async function main(): Promise<void> {
  const width = values.mode === 'gradient' && statSync(source).size > 1e8 ? hidden : await inputWidth();
  const shapes = { sample: [batch, 4, latent, latent], timestep: [batch], encoder_hidden_states: [batch, 77, width] };
  const feeds: Record<string, ort.Tensor> = {
    sample: randomTensor(shapes.sample, 1),
    timestep: new ort.Tensor('float32', new Float32Array(batch).fill(500), shapes.timestep),
    encoder_hidden_states: randomTensor(shapes.encoder_hidden_states, 2),
  };
  let path = source;
  let buildS = 0;
  if (values.mode === 'gradient') {
    const options: GradientGraphOptions = {
      wrt: values['wrt-sample'] ? ['encoder_hidden_states', 'sample'] : ['encoder_hidden_states'],
      loss: { kind: 'mse', output: 'out_sample' },
      pinShapes: shapes,
    };
    const started = performance.now();
    const entry = cachedModelEdit<GradientGraphInfo>({
      source,
      cacheDir: join(benchCache(), 'graphs'),
      label: 'unet-gradient',
      editKey: { options, version: GRADIENT_GRAPH_VERSION },
      edit: (bytes) => {
        const { model, ...info } = buildGradientGraph(bytes, options);
        return { model, result: info };
      },
    });
    buildS = (performance.now() - started) / 1000;
    path = entry.path;
    feeds.out_sample_target = randomTensor(shapes.sample, 3);
    console.error(`graph: ${entry.hit ? 'cached' : 'built'} in ${buildS.toFixed(1)} s, ${JSON.stringify(entry.result.stats)}`);
  }
  const created = performance.now();
  const session = await ort.InferenceSession.create(path, {
    executionProviders: ['cpu'],
    intraOpNumThreads: Number(values.threads),
    graphOptimizationLevel: values['opt-level'] as 'all' | 'extended' | 'basic' | 'disabled',
    logSeverityLevel: 3,
    ...(values['no-prepack'] ? { extra: { session: { disable_prepacking: '1' } } } : {}),
    ...(values['no-arena'] ? { enableCpuMemArena: false } : {}),
  });
  const sessionS = (performance.now() - created) / 1000;
  const rssAfterLoad = readPeakRssMb(process.pid);
  const times: number[] = [];
  for (let i = 0; i < Number(values.runs); i++) {
    const t = performance.now();
    await session.run(feeds);
    times.push((performance.now() - t) / 1000);
    console.error(`run ${i + 1}: ${times[i]!.toFixed(2)} s`);
  }
  await session.release();
  const sorted = [...times].sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      unet: values.unet,
      mode: values.mode,
      latent,
      batch,
      prepack: !values['no-prepack'],
      arena: !values['no-arena'],
      optLevel: values['opt-level'],
      threads: Number(values.threads),
      buildS,
      sessionS,
      firstRunS: times[0],
      medianRunS: sorted[Math.floor(sorted.length / 2)],
      peakRssMbAfterLoad: rssAfterLoad,
      peakRssMb: readPeakRssMb(process.pid),
    }),
  );
}

await main();
