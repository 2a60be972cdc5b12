/**
 * One diffuse txt2img run for the speed benchmark, in its own process so that its peak RSS is
 * its own. bench/run.ts starts it with one JSON argument (WorkerArgs) and reads the
 * `BENCH_JSON {...}` line it prints, with the same fields as the Python peers (tools/bench_common.py).
 */
import { existsSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ensureConvertedControlNet } from '../src/graphs/controlnet-convert.js';
import { ensureConvertedModel } from '../src/graphs/converted-cache.js';
import { ensureConvertedVae } from '../src/graphs/vae-convert.js';
import { encodePng } from '../src/image/encode-png.js';
import type { Raster } from '../src/image/raster.js';
import { writeFileAtomic } from '../src/image/write.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import type { ControlUnit, GenerationRequest, PipelineEvent } from '../src/pipeline/types.js';
import { readJson } from '../test/helpers/fixtures.js';
import { checkpointBytes, type Recipe } from '../test/helpers/synthetic-checkpoint.js';
import { VAE_FIXTURES } from '../test/helpers/vae-files.js';
import { CONTROLNET_TORCH } from './peers.js';
import { BENCH_PROMPT, benchCache, ortNodeVersion, type WorkerArgs } from './settings.js';
import { readPeakRssMb } from './proc.js';

type Stage = 'load' | 'encode' | 'denoise' | 'decode';

/**
 * Wraps InferenceSession.run (here only, the library is untouched) so that time inside ONNX
 * Runtime is told apart from diffuse's own JavaScript around it.
 */
function instrumentRun(current: () => Stage): Record<Stage, number> {
  const inside: Record<Stage, number> = { load: 0, encode: 0, denoise: 0, decode: 0 };
  const proto = (ort.InferenceSession as unknown as { prototype: { run: (...args: unknown[]) => Promise<unknown> } }).prototype;
  const original = proto.run;
  proto.run = async function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    try {
      return await original.apply(this, args);
    } finally {
      inside[current()] += performance.now() - t0;
    }
  };
  return inside;
}

/**
 * The model folder and ControlNet folders a run loads: a converted row's conversions (made by the first
 * run, the warm-up, and then found in <cache>/converted, before the timed load starts). Each further
 * ControlNet unit gets a link of its own to the converted folder, so that it opens its own session and
 * holds its own copy of the weights, as two different ControlNets would.
 */
async function folders(args: WorkerArgs): Promise<{ model: string; controlnets: string[]; vae?: string }> {
  const cache = join(benchCache(), 'converted');
  const model = args.converted ? await ensureConvertedModel(args.model, cache) : args.model;
  const vae = args.vae === 'taesd' ? await taesdFolder(cache) : undefined;
  if (!args.controlnets) return { model, controlnets: [], ...(vae ? { vae } : {}) };
  const net = await ensureConvertedControlNet(CONTROLNET_TORCH, cache);
  const links = Array.from({ length: args.controlnets - 1 }, (_, i) => {
    const link = `${net}-unit${i + 2}`;
    if (!existsSync(link)) symlinkSync(net, link);
    return link;
  });
  return { model, controlnets: [net, ...links], ...(vae ? { vae } : {}) };
}

/** TAESD's decoder as `--vae taesd` loads it: the full-width fixture recipe's file, converted once (random weights, real size). */
async function taesdFolder(cache: string): Promise<string> {
  const file = join(benchCache(), 'taesd_decoder.safetensors');
  if (!existsSync(file)) writeFileSync(file, checkpointBytes(readJson<Recipe>(join(VAE_FIXTURES, 'taesd_decoder.recipe.json.gz'))));
  return ensureConvertedVae(file, cache);
}

/** A canny-like control picture: thin white rings on black (what it shows does not change the cost). */
function controlPicture(width: number, height: number): Raster {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (Math.round(Math.hypot(x - width / 2, y - height / 2)) % 24 === 0) data.fill(255, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  }
  return { width, height, channels: 3, data };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as WorkerArgs;
  const { model, controlnets, vae } = await folders(args);
  let stage: Stage = 'load';
  const inside = instrumentRun(() => stage);
  const runAtStepStart: number[] = [];

  const t0 = performance.now();
  // As the CLI runs: attention fused, graphs from the optimised-graph cache, the text encoder
  // parked while the UNet runs (the caches live beside the bench models).
  const bundle = await loadModel(model, {
    device: 'cpu',
    threads: args.threads,
    fuseAttention: true,
    parkTextEncoder: true,
    graphCache: join(benchCache(), 'graphs'),
    ...(args.noOptimizedCache ? {} : { optimizedCache: join(benchCache(), 'optimized') }),
    ...(args.quantize ? { quantize: args.quantize } : {}),
    ...(args.int8Format ? { int8Format: args.int8Format } : {}),
    ...((args.deepCache ?? 1) > 1 ? { deepCache: true } : {}),
    ...(args.conv ? { conv: args.conv } : {}),
    ...(args.tokenMerging ? { tokenMerging: args.tokenMerging } : {}),
    ...(controlnets.length ? { controlnets } : {}),
    ...(vae ? { vae } : {}),
  });
  const loadMs = performance.now() - t0;

  const request: GenerationRequest = {
    prompt: BENCH_PROMPT,
    negativePrompt: '',
    steps: args.steps,
    cfgScale: args.cfg,
    cfgRescale: 0,
    seed: args.seed,
    rng: 'cpu',
    seedMode: 'diffusers',
    ...(args.lcm ? { sampler: 'lcm', schedule: 'normal' } : { sampler: args.sampler ?? 'euler', schedule: args.schedule ?? 'normal' }),
    width: args.width,
    height: args.height,
    batchSize: 1,
    ...((args.deepCache ?? 1) > 1 ? { deepCache: args.deepCache } : {}),
    ...(controlnets.length ? { control: controlnets.map((dir): ControlUnit => ({ model: dir, image: controlPicture(args.width, args.height), weight: 1, start: 0, end: 1 })) } : {}),
  };
  const marks: number[] = [];
  const listener = (event: PipelineEvent): void => {
    if (event.kind === 'stage') {
      stage = event.stage;
      if (event.stage === 'denoise') {
        marks.push(performance.now());
        runAtStepStart.push(inside.denoise);
      }
    } else {
      marks.push(performance.now());
      runAtStepStart.push(inside.denoise);
    }
  };
  const t1 = performance.now();
  const result = await generate(bundle, request, listener);
  const totalMs = performance.now() - t1;
  // The last stretch of a whole image: PNG encoding (with its parameters chunk) and the write.
  const t2 = performance.now();
  const png = join(benchCache(), `diffuse-worker-${process.pid}.png`);
  await writeFileAtomic(png, await encodePng(result.images[0]!.image, [{ keyword: 'parameters', text: BENCH_PROMPT }]), { ifExists: 'overwrite' });
  const pngMs = performance.now() - t2;
  rmSync(png, { force: true });
  // After the timings: what bench/run.ts compares with the reference row (cosine, PSNR).
  if (args.output) {
    const latents = result.latents;
    writeFileSync(`${args.output}.latents`, new Uint8Array(latents.buffer, latents.byteOffset, latents.byteLength));
    writeFileSync(`${args.output}.rgb`, result.images[0]!.image.data);
  }

  const stepMs = marks.slice(1).map((m, i) => m - marks[i]!);
  const stepRunMs = runAtStepStart.slice(1).map((r, i) => r - runAtStepStart[i]!);
  const insideMs = inside.encode + inside.denoise + inside.decode;
  const record = {
    tool: 'diffuse',
    width: args.width,
    height: args.height,
    steps: args.steps,
    cfg: args.cfg,
    threads: args.threads,
    peak_rss_mb: readPeakRssMb(process.pid),
    load_s: loadMs / 1000,
    text_encoder_s: result.timings.textEncoder / 1000,
    step_s: stepMs.map((ms) => ms / 1000),
    vae_decode_s: result.timings.vaeDecode / 1000,
    total_s: totalMs / 1000,
    png_s: pngMs / 1000,
    // Guidance at or below 1 runs no unconditional half (src/pipeline/guided-net.ts), as LCM's embedded guidance.
    unet_batch: args.lcm || args.cfg <= 1 ? 1 : 2,
    runtime: `onnxruntime-node ${ortNodeVersion()}`,
    inference_s: insideMs / 1000,
    // diffuse's own time: wall time of generate() outside InferenceSession.run, per stage.
    overhead_s: {
      total: (totalMs - insideMs) / 1000,
      encode: (result.timings.textEncoder - inside.encode) / 1000,
      denoise_per_step: stepMs.map((ms, i) => (ms - stepRunMs[i]!) / 1000),
      decode: (result.timings.vaeDecode - inside.decode) / 1000,
    },
  };
  await bundle.release();
  console.log(`BENCH_JSON ${JSON.stringify(record)}`);
}

await main();
