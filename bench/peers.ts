import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_PROMPT, benchCache, ortNodeVersion, type WorkerArgs } from './settings.js';
import { ensureConvertedModel } from '../src/graphs/converted-cache.js';
import { INT8_FORMATS } from '../src/onnx/quantize-int8.js';

/** One tool's measurements for one size, as its worker prints them (tools/bench_common.py's fields). */
export interface PeerResult {
  tool: string;
  load_s: number;
  text_encoder_s: number;
  /** Wall time of each denoising step (one CFG step: the UNet on the batch of 2 plus the sampler). */
  step_s: number[];
  vae_decode_s: number;
  total_s: number;
  /** The worker's own VmHWM, when it reports one; bench/run.ts also polls it from outside. */
  peak_rss_mb?: number;
  overhead_s?: { total: number; encode: number; denoise_per_step: number[]; decode: number };
  /** diffuse only: PNG encoding and writing after the decode (the end of a whole image). */
  png_s?: number;
  /** The library that does the arithmetic and its version ("onnxruntime 1.20.1", "onnxruntime-node 1.30.0", "torch 2.5.1"). */
  runtime?: string;
  /** Samples per UNet call: 2 for a CFG step, 1 for LCM (guidance embedded). */
  unet_batch?: number;
}

export interface Command {
  file: string;
  argv: string[];
  env?: Record<string, string>;
}

/** How to start one tool, and how to read its result from its output. */
export interface Peer {
  name: string;
  /** Why it cannot run here, or undefined when it can. */
  unavailable(): string | undefined;
  /** May first prepare its input (optimum sdxl: diffuse's conversion of the folder, made once and cached). */
  command(args: WorkerArgs): Command | Promise<Command>;
  /** Settings this tool always runs with (LCM: its own step count and guidance). */
  fixed?: Partial<WorkerArgs>;
  /**
   * The row this one is an option of (same model, prompt and seed): the table gives its time ratio
   * to that row's and, when both wrote their outputs (WorkerArgs.output), the cosine of the final
   * latents and the PSNR of the image.
   */
  reference?: string;
  /** The model is not SD 1.5 (SDXL): the table gives no "× floor", which is SD 1.5's UNet cost (issue 7). */
  noFloor?: boolean;
  parse(stdout: string): PeerResult;
}

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PYTHON = process.env.DIFFUSE_BENCH_PYTHON ?? '/opt/diffuse-venv/bin/python';
// Its CLI target has been `sd-cli` since the examples were split into cli/ and server/ (bench/README.md's build).
const SD_CPP = process.env.SD_CPP_BIN ?? join(benchCache(), 'sdcpp', 'build', 'bin', 'sd-cli');

export const SD15_TORCH = join(benchCache(), 'sd15', 'torch');
export const SD15_ONNX = join(benchCache(), 'sd15', 'onnx');
export const SD15_SINGLE_FILE = join(benchCache(), 'sd15', 'sd15.safetensors');
export const LCM_ONNX = join(benchCache(), 'lcm', 'onnx');
export const CONTROLNET_TORCH = join(benchCache(), 'controlnet');
export const SDXL_TORCH = join(benchCache(), 'sdxl', 'torch');
export const SDXL_SINGLE_FILE = join(benchCache(), 'sdxl', 'sdxl.safetensors');
const MODELS_HINT = 'run /opt/diffuse-venv/bin/python tools/make_bench_models.py';

function parseJsonLine(stdout: string): PeerResult {
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error('no BENCH_JSON line in its output');
  return JSON.parse(line.slice('BENCH_JSON '.length)) as PeerResult;
}

function missing(path: string, what: string): string | undefined {
  return existsSync(join(path, '.complete')) ? undefined : `${what} not built (${path}); ${MODELS_HINT}`;
}

/** How a Python peer reads its model, beyond the folder it is given. */
interface PythonInput {
  /** The folder the script opens, made from `model` (optimum sdxl: diffuse's conversion of the diffusers folder). */
  prepare?: (model: string) => Promise<string>;
  /** Flags of the script's own (tools/bench_optimum.py --lean-sessions). */
  flags?: string[];
}

/**
 * `overlay`: a folder put first on PYTHONPATH (a second onnxruntime wheel installed with
 * `pip install --target`), so the same venv's optimum runs on another ONNX Runtime.
 */
function pythonPeer(name: string, script: string, model: string, overlay?: { dir: string; hint: string }, fixed?: Partial<WorkerArgs>, input: PythonInput = {}): Peer {
  return {
    name,
    ...(fixed ? { fixed } : {}),
    unavailable: () => {
      if (!existsSync(PYTHON)) return `no Python at ${PYTHON}`;
      if (overlay && !existsSync(overlay.dir)) return overlay.hint;
      return missing(model, 'model');
    },
    command: async (a) => ({
      file: PYTHON,
      argv: [join(REPO, 'tools', script), '--model', input.prepare ? await input.prepare(model) : model, ...(input.flags ?? []),
        '--width', `${a.width}`, '--height', `${a.height}`,
        '--steps', `${a.steps}`, '--cfg', `${a.cfg}`, '--threads', `${a.threads}`, '--seed', `${a.seed}`],
      ...(overlay ? { env: { PYTHONPATH: [overlay.dir, process.env.PYTHONPATH].filter(Boolean).join(':') } } : {}),
    }),
    parse: parseJsonLine,
  };
}

/**
 * The ONNX folder diffuse converts a diffusers folder to (optimum's layout, fp32), as the `converted` rows' worker
 * finds or makes it; the bench process converts it here when no diffuse row has yet (~2.5 min for SDXL, streamed).
 */
const convertedFolder = (model: string): Promise<string> => ensureConvertedModel(model, join(benchCache(), 'converted'));

/** Where the onnxruntime wheel of diffuse's own ONNX Runtime version goes for the optimum row that shares it. */
export function sameOrtOverlay(): { dir: string; hint: string } {
  const version = ortNodeVersion();
  const dir = join(benchCache(), `onnxruntime-${version}`);
  return { dir, hint: `onnxruntime ${version} for Python not installed; run ${PYTHON} -m pip install --no-deps --target ${dir} onnxruntime==${version}` };
}

function diffusePeer(name: string, model: string, extra: Partial<WorkerArgs> = {}, fixed?: Partial<WorkerArgs>, reference?: string): Peer {
  return {
    name,
    ...(reference ? { reference } : {}),
    unavailable: () => missing(model, extra.converted ? 'model' : 'ONNX model') ?? (extra.controlnets ? missing(CONTROLNET_TORCH, 'ControlNet') : undefined),
    command: (a) => ({
      file: process.execPath,
      argv: [fileURLToPath(new URL('./diffuse-worker.js', import.meta.url)), JSON.stringify({ ...a, ...extra, model })],
    }),
    ...(fixed ? { fixed } : {}),
    parse: parseJsonLine,
  };
}

/** LCM-Dreamshaper-v7's recommended use: 4 steps, guidance 8 (embedded, so one UNet sample per step). */
const LCM_RUN: Partial<WorkerArgs> = { lcm: true, steps: 4, cfg: 8 };

/** SDXL base's default guidance (diffusers' StableDiffusionXLPipeline): every step a CFG batch of 2. */
const SDXL_RUN: Partial<WorkerArgs> = { cfg: 5 };
/**
 * SDXL-Turbo as its model card runs it: 512², 1 step, no guidance (one UNet sample), Euler ancestral on trailing
 * timesteps (A1111's sgm_uniform). Its UNet is SDXL base's architecture, so the row runs the sdxl weights.
 */
const SDXL_TURBO_RUN: Partial<WorkerArgs> = { width: 512, height: 512, steps: 1, cfg: 0, sampler: 'euler_a', schedule: 'sgm_uniform' };

/**
 * stable-diffusion.cpp's CLI (built by hand, see bench/README.md) on a single-file checkpoint, its
 * usual input (the same weights as the other tools'; tools/sd15_single_file.py, tools/sdxl_single_file.py). It prints no
 * JSON: the numbers come from its log lines and its per-step progress bar ("|===| 2/4 - 9.87s/it"; fast steps print
 * "it/s" instead).
 */
function sdCppPeer(name: string, checkpoint: string, fixed?: Partial<WorkerArgs>, flags: string[] = []): Peer {
  return {
    name,
    ...(fixed ? { fixed } : {}),
    unavailable: () =>
      !existsSync(SD_CPP)
        ? `no sd binary at ${SD_CPP} (set SD_CPP_BIN; build steps in bench/README.md)`
        : existsSync(checkpoint)
          ? undefined
          : `single-file checkpoint not built (${checkpoint}); ${MODELS_HINT}`,
    command: (a) => ({
      file: SD_CPP,
      // --eager-load: the weights are read at load, as every other tool does, not during the first step.
      argv: ['-m', checkpoint, '--eager-load', ...flags, '-p', BENCH_PROMPT, '-W', `${a.width}`, '-H', `${a.height}`, '--steps', `${a.steps}`,
        '--cfg-scale', `${a.cfg}`, '--sampling-method', 'euler', '-t', `${a.threads}`, '-s', `${a.seed}`,
        '-o', join(benchCache(), 'sdcpp-out.png'), '-v'],
    }),
    parse: parseSdCppLog,
  };
}

export function parseSdCppLog(stdout: string): PeerResult {
  const seconds = (re: RegExp): number => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`log line ${re.source} not found`);
    return Number(m[1]);
  };
  const conditionedAt = stdout.search(/get_learned_condition completed/);
  const sampledAt = stdout.search(/sampling completed/);
  if (conditionedAt < 0 || sampledAt < 0) throw new Error('sampling log lines not found');
  const steps = [...stdout.slice(conditionedAt, sampledAt).matchAll(/(\d+)\/(\d+) - ([\d.]+)(s\/it|it\/s)/g)]
    .filter((m) => m[1] !== '0')
    .map((m) => (m[4] === 's/it' ? Number(m[3]) : 1 / Number(m[3])));
  return {
    tool: 'stable-diffusion.cpp',
    load_s: seconds(/loading tensors completed, taking ([\d.]+)s/),
    text_encoder_s: seconds(/get_learned_condition completed, taking ([\d.]+)s/),
    step_s: steps,
    vae_decode_s: seconds(/decode_first_stage completed, taking ([\d.]+)s/),
    total_s: seconds(/generate_image completed in ([\d.]+)s/),
    runtime: 'ggml (stable-diffusion.cpp)',
  };
}

/** An option of plain fp32 diffuse on SD 1.5, compared with it. */
const sd15Option = (name: string, extra: Partial<WorkerArgs>): Peer => diffusePeer(name, SD15_ONNX, extra, undefined, 'diffuse');

/** DeepCache intervals with a row: `--deep-cache N` (N = 1 is the plain UNet, the 'diffuse' row). */
export const DEEP_CACHE_ROWS = [2, 3, 5];

export const PEERS: Peer[] = [
  diffusePeer('diffuse', SD15_ONNX),
  sd15Option('diffuse winograd', { conv: 'winograd' }),
  sd15Option('diffuse direct', { conv: 'direct' }),
  sd15Option('diffuse int8', { quantize: 'int8' }),
  sd15Option('diffuse int8-matmul', { quantize: 'int8-matmul' }),
  // Each weight format by name, whatever this CPU would choose (src/onnx/cpu-features.ts).
  ...INT8_FORMATS.map((f) => sd15Option(`diffuse int8 ${f}`, { quantize: 'int8', int8Format: f })),
  ...INT8_FORMATS.map((f) => sd15Option(`diffuse int8-matmul ${f}`, { quantize: 'int8-matmul', int8Format: f })),
  ...DEEP_CACHE_ROWS.map((n) => sd15Option(`diffuse deep-cache ${n}`, { deepCache: n })),
  sd15Option('diffuse tome 0.5', { tokenMerging: 0.5 }),
  // Issue 22's fast options together: int8 (this CPU's format), DeepCache and TAESD's decoder.
  sd15Option('diffuse fast', { quantize: 'int8', deepCache: 3, vae: 'taesd' }),
  // With token merging too: on int8 the float attention at full resolution is the largest share of a step.
  sd15Option('diffuse int8 tome 0.5', { quantize: 'int8', tokenMerging: 0.5 }),
  sd15Option('diffuse fast tome', { quantize: 'int8', deepCache: 3, vae: 'taesd', tokenMerging: 0.5 }),
  // ControlNet needs a UNet that takes its residuals: diffuse's own conversion of the same weights (optimum's
  // export takes none), so these rows are compared with that conversion run plain, not with 'diffuse'.
  diffusePeer('diffuse converted', SD15_TORCH, { converted: true }),
  diffusePeer('diffuse controlnet', SD15_TORCH, { converted: true, controlnets: 1 }, undefined, 'diffuse converted'),
  diffusePeer('diffuse controlnet x2', SD15_TORCH, { converted: true, controlnets: 2 }, undefined, 'diffuse converted'),
  diffusePeer('diffuse LCM', LCM_ONNX, {}, LCM_RUN),
  diffusePeer('diffuse LCM int8', LCM_ONNX, { quantize: 'int8' }, LCM_RUN, 'diffuse LCM'),
  diffusePeer('diffuse LCM fast', LCM_ONNX, { quantize: 'int8', vae: 'taesd' }, LCM_RUN, 'diffuse LCM'),
  diffusePeer('diffuse LCM fast dc2', LCM_ONNX, { quantize: 'int8', vae: 'taesd', deepCache: 2 }, LCM_RUN, 'diffuse LCM'),
  diffusePeer('diffuse LCM fast dc2 tome', LCM_ONNX, { quantize: 'int8', vae: 'taesd', deepCache: 2, tokenMerging: 0.5 }, LCM_RUN, 'diffuse LCM'),
  pythonPeer('optimum (ORT)', 'bench_optimum.py', SD15_ONNX),
  // The same pipeline on diffuse's own ONNX Runtime version: the ratio then compares the pipelines, not two runtimes.
  pythonPeer('optimum (same ORT)', 'bench_optimum.py', SD15_ONNX, sameOrtOverlay()),
  pythonPeer('diffusers (torch)', 'bench_diffusers.py', SD15_TORCH),
  // SDXL base at 1024² (`--sizes 1024`): diffuse's own conversion of the diffusers folder, as `--model ./folder` runs it,
  // beside diffusers on the same folder (optimum and stable-diffusion.cpp below).
  { ...diffusePeer('diffuse sdxl', SDXL_TORCH, { converted: true }, SDXL_RUN), noFloor: true },
  { ...pythonPeer('diffusers sdxl', 'bench_diffusers.py', SDXL_TORCH, undefined, SDXL_RUN), noFloor: true },
  { ...diffusePeer('diffuse sdxl-turbo', SDXL_TORCH, { converted: true }, SDXL_TURBO_RUN), noFloor: true },
  sdCppPeer('stable-diffusion.cpp', SD15_SINGLE_FILE),
  // optimum on diffuse's conversion of the same folder (optimum's ONNX layout), on diffuse's ONNX Runtime version, its
  // sessions without arena or prepacking: with ONNX Runtime's defaults its five open sessions would not fit in 24 GB.
  { ...pythonPeer('optimum sdxl', 'bench_optimum.py', SDXL_TORCH, sameOrtOverlay(), SDXL_RUN, { prepare: convertedFolder, flags: ['--lean-sessions'] }), noFloor: true },
  // The SGM single file holds the folder's fp16 values; --type f32 loads them as fp32, as every other row does.
  { ...sdCppPeer('stable-diffusion.cpp sdxl', SDXL_SINGLE_FILE, SDXL_RUN, ['--type', 'f32']), noFloor: true },
];

/** --only's tools in the order given (the order they run in), each name checked. */
export function choosePeers(list: string): Peer[] {
  return list.split(',').map((name) => {
    const peer = PEERS.find((p) => p.name === name.trim());
    if (!peer) throw new Error(`--only: no tool named '${name}' (tools: ${PEERS.map((p) => p.name).join(', ')})`);
    return peer;
  });
}
