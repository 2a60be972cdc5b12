import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Int8Format } from '../src/onnx/quantize-int8.js';
import type { SamplerId, ScheduleId } from '../src/schedulers/index.js';

/** The same prompt every tool gets (tools/bench_common.py has it too). */
export const BENCH_PROMPT = 'a photograph of an astronaut riding a horse';

/** What one run of one tool is asked to do. */
export interface WorkerArgs {
  /** Model folder in the layout this tool reads. */
  model: string;
  width: number;
  height: number;
  steps: number;
  cfg: number;
  threads: number;
  seed: number;
  /** diffuse only: --quantize. */
  quantize?: 'int8' | 'int8-matmul';
  /** diffuse only: the int8 weight format (default: this CPU's, see src/onnx/cpu-features.ts). */
  int8Format?: Int8Format;
  /** diffuse only: --conv (3x3 convolutions as Winograd F(2x2,3x3): all with winograd, none with direct; default auto's share). */
  conv?: 'winograd' | 'direct';
  /** diffuse only: --token-merging (ToMe's ratio). */
  tokenMerging?: number;
  /** diffuse only: the LCM model, its sampler and embedded guidance (one UNet sample per step, no CFG batch). */
  lcm?: boolean;
  /**
   * diffuse only: open the graphs without the optimised-graph cache (`--optimized-cache off`), so ONNX Runtime
   * optimises at every load and nothing is written: SDXL's entry is another 13 GB of disk (run.ts --no-optimized-cache).
   */
  noOptimizedCache?: boolean;
  /** diffuse only: the sampler and schedule when not Euler on the model's own (SDXL-Turbo: euler_a, sgm_uniform). */
  sampler?: SamplerId;
  schedule?: ScheduleId;
  /** diffuse only: --deep-cache (the UNet split once per model; 1 or absent is the plain UNet). */
  deepCache?: number;
  /** diffuse only: --vae taesd (TAESD's decoder at its real size, from the test fixture's full-width recipe). */
  vae?: 'taesd';
  /**
   * diffuse only: the model is a diffusers PyTorch folder converted by diffuse's graph builder (as
   * `--model ./folder` does; cached in <cache>/converted), whose UNet can take ControlNet residuals.
   */
  converted?: boolean;
  /** diffuse only: ControlNet units (each its own session of <cache>/controlnet/ converted), control image 512². */
  controlnets?: number;
  /**
   * diffuse only: where to write the final latents (`<path>.latents`, float32) and the decoded
   * image (`<path>.rgb`, 8-bit), so bench/run.ts can compare a row with its reference row.
   */
  output?: string;
}

/**
 * SD 1.5 UNet cost from issue 7: 0.80 TFLOP per sample at 512x512, so 1.61 TFLOP per CFG step
 * (two samples), and the machine's measured operator rates put the floor at ~3.8 s per CFG step.
 * At other sizes the floor is scaled by the pixel count; attention grows faster than that, so
 * below 512x512 this floor is an upper bound (fractions read slightly optimistic).
 */
export const FLOOR_S_PER_CFG_STEP_512 = 3.8;

export function floorSeconds(width: number, height: number): number {
  return (FLOOR_S_PER_CFG_STEP_512 * (width * height)) / (512 * 512);
}

export function benchCache(): string {
  return process.env.DIFFUSE_BENCH_CACHE ?? join(homedir(), '.cache', 'diffuse-bench');
}

/** The onnxruntime-node version diffuse runs on (the optimum row that shares it installs the same Python wheel). */
export function ortNodeVersion(): string {
  const url = new URL('../../node_modules/onnxruntime-node/package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}
