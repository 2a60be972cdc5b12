import { UsageError } from '../errors.js';
import { DEVICES, type Device } from '../onnx/session.js';
import { QUANTIZATIONS, type Quantization } from '../pipeline/quantize.js';
import { INT8_FORMATS, type Int8Format } from '../onnx/quantize-int8.js';
import type { RngKind } from '../rng/types.js';
import type { SdeNoise, SeedMode } from '../pipeline/types.js';
import type { PromptWeighting } from '../pipeline/types.js';
import type { CondPadding } from '../text/prompt-pad.js';

/**
 * One table of generation options. It drives the commander flags of every generating
 * subcommand, the keys a config file may set, `diffuse config`, and the README's option list,
 * so a setting has one name, one parser and one default everywhere.
 */
export interface Settings {
  model: string;
  negativePrompt: string;
  steps: number;
  cfgScale: number;
  cfgRescale: number;
  sampler: string;
  schedule: string | undefined;
  seed: number | undefined;
  variationSeed: number | undefined;
  variationStrength: number;
  rng: RngKind;
  seedMode: SeedMode;
  sdeNoise: SdeNoise;
  ensd: number;
  eta: number | undefined;
  width: number | undefined;
  height: number | undefined;
  batchSize: number;
  batchCount: number;
  device: Device;
  threads: number | undefined;
  output: string;
  overwrite: boolean;
  offline: boolean;
  yes: boolean;
  vaeTiling: boolean;
  optimizedCache: string;
  attention: 'fused' | 'plain';
  vae: string | undefined;
  quantize: Quantization;
  int8Format: 'auto' | Int8Format;
  promptWeighting: PromptWeighting;
  padCond: 'none' | CondPadding;
  clipSkip: number;
  embeddingsDir: string | undefined;
}

export type SettingKey = keyof Settings;

export interface OptionSpec<K extends SettingKey = SettingKey> {
  key: K;
  flags: string;
  description: string;
  parse: (raw: unknown, label: string) => Settings[K];
  default: Settings[K];
  /** May a config file set it? (Per-image values such as the seed may not.) */
  configurable: boolean;
  /** What an unset (undefined) value means, for `diffuse config`. */
  unset?: string;
}

function spec<K extends SettingKey>(s: OptionSpec<K>): OptionSpec<K> {
  return s;
}

export function parseInteger(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: unknown, label: string): number => {
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`${label} must be a whole number from ${min} to ${max} (got '${String(raw)}')`);
    }
    return n;
  };
}

export function parseNumber(min: number, max = Infinity) {
  return (raw: unknown, label: string): number => {
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (String(raw).trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      const range = max === Infinity ? `at least ${min}` : `from ${min} to ${max}`;
      throw new UsageError(`${label} must be a number ${range} (got '${String(raw)}')`);
    }
    return n;
  };
}

function parseChoice<T extends string>(choices: readonly T[]) {
  return (raw: unknown, label: string): T => {
    const v = String(raw).toLowerCase() as T;
    if (!choices.includes(v)) throw new UsageError(`${label} must be one of ${choices.join(', ')} (got '${String(raw)}')`);
    return v;
  };
}

const parseString = (raw: unknown): string => String(raw);
const parseBoolean = (raw: unknown, label: string): boolean => {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new UsageError(`${label} must be true or false (got '${String(raw)}')`);
};

function optional<T>(parse: (raw: unknown, label: string) => T) {
  return (raw: unknown, label: string): T | undefined => (raw === undefined ? undefined : parse(raw, label));
}

/** Multiples of 8 as diffusers requires; checked again against the model's own latent ratio at load. */
const parseSize = optional((raw: unknown, label: string): number => {
  const n = parseInteger(8, 8192)(raw, label);
  if (n % 8 !== 0) throw new UsageError(`${label} must be a multiple of 8 (got ${n}; try ${Math.max(8, Math.round(n / 8) * 8)})`);
  return n;
});

export const MAX_SEED = 2 ** 32 - 1;

export const GENERATION_OPTIONS = [
  spec({ key: 'model', flags: '-m, --model <ref>', description: "model: a registry id (see 'diffuse models list'), hf:org/repo@revision, or a diffusers ONNX folder (default: the registry's default)", parse: parseString, default: '', configurable: true, unset: "the registry's default" }),
  spec({ key: 'negativePrompt', flags: '-n, --negative-prompt <text>', description: 'what the image should not show', parse: parseString, default: '', configurable: true, unset: 'empty' }),
  spec({ key: 'steps', flags: '-s, --steps <n>', description: 'sampling steps', parse: parseInteger(1, 1000), default: 20, configurable: true }),
  spec({ key: 'cfgScale', flags: '-g, --cfg-scale <x>', description: 'classifier-free guidance scale (1 or less: no guidance, no negative prompt)', parse: parseNumber(0, 100), default: 7, configurable: true }),
  spec({ key: 'cfgRescale', flags: '--cfg-rescale <x>', description: 'guidance rescale for v-prediction models (0 = off, 0.7 typical)', parse: parseNumber(0, 1), default: 0, configurable: true }),
  spec({ key: 'sampler', flags: '--sampler <name>', description: "sampler id (euler_a, dpmpp_2m, ...) or A1111 name ('DPM++ 2M Karras')", parse: parseString, default: 'euler_a', configurable: true }),
  spec({ key: 'schedule', flags: '--schedule <name>', description: "noise schedule: normal, karras, exponential, uniform, sgm_uniform, simple, ddim_uniform, beta, kl_optimal, align_your_steps, linear_quadratic, polyexponential, lcm (and A1111's variants: see the README; default: the sampler's own)", parse: optional(parseString), default: undefined, configurable: true, unset: "the sampler's own" }),
  spec({ key: 'seed', flags: '--seed <n>', description: `seed of the first image (0..${MAX_SEED}); random when absent, always recorded`, parse: optional(parseInteger(0, MAX_SEED)), default: undefined, configurable: false }),
  spec({ key: 'variationSeed', flags: '--variation-seed <n>', description: "A1111's variation seed: the noise is slerped towards this seed's (random when a strength is given without it)", parse: optional(parseInteger(0, MAX_SEED)), default: undefined, configurable: false }),
  spec({ key: 'variationStrength', flags: '--variation-strength <x>', description: 'how far towards the variation seed (0 = none, 1 = that seed)', parse: parseNumber(0, 1), default: 0, configurable: false }),
  spec({ key: 'promptWeighting', flags: '--prompt-weighting <mode>', description: "prompt syntax: a1111 ((emphasis:1.2), [edits:10], BREAK, long prompts), comfy (same syntax, ComfyUI's weighting), none (plain text, 77 tokens, as diffusers)", parse: parseChoice(['a1111', 'comfy', 'none'] as const), default: 'a1111', configurable: true }),
  spec({ key: 'padCond', flags: '--pad-cond <how>', description: "prompt and negative of different lengths: none (two UNet calls, A1111's default), empty-chunks or v0 (A1111's padding options)", parse: parseChoice(['none', 'empty-chunks', 'v0'] as const), default: 'none', configurable: true }),
  spec({ key: 'clipSkip', flags: '--clip-skip <n>', description: 'use the hidden states of the n-th last text encoder layer (A1111 numbering: 1 = last)', parse: parseInteger(1, 12), default: 1, configurable: true }),
  spec({ key: 'vae', flags: '--vae <dir>', description: "another VAE instead of the model's: a folder with vae_decoder/ (and vae_encoder/ for img2img) in the diffusers ONNX layout", parse: optional(parseString), default: undefined, configurable: true, unset: "the model's" }),
  spec({ key: 'embeddingsDir', flags: '--embeddings-dir <dir>', description: 'textual-inversion embeddings (.safetensors, .pt, .bin), used where their file name appears in a prompt', parse: optional(parseString), default: undefined, configurable: true, unset: 'none' }),
  spec({ key: 'rng', flags: '--rng <kind>', description: 'noise source: cpu (torch CPU generator, as diffusers and ComfyUI) or philox (A1111 "NV")', parse: parseChoice(['cpu', 'philox'] as const), default: 'cpu', configurable: true }),
  spec({ key: 'seedMode', flags: '--seed-mode <mode>', description: 'batch noise: a1111 (image i uses seed+i) or diffusers (one generator for the batch)', parse: parseChoice(['a1111', 'diffusers'] as const), default: 'a1111', configurable: true }),
  spec({ key: 'sdeNoise', flags: '--sde-noise <source>', description: "noise of the SDE samplers (dpmpp_sde, dpmpp_2m_sde, dpmpp_3m_sde): brownian (k-diffusion's Brownian tree, as A1111 and ComfyUI) or plain (the seed's stream, as diffusers' DPMSolverMultistep SDE)", parse: parseChoice(['brownian', 'plain'] as const), default: 'brownian', configurable: true }),
  spec({ key: 'ensd', flags: '--ensd <n>', description: "A1111's eta noise seed delta: the noise ancestral steps draw comes from seed + n (to reproduce A1111 images that record ENSD)", parse: parseInteger(0, 2 ** 31 - 1), default: 0, configurable: true }),
  spec({ key: 'eta', flags: '--eta <x>', description: 'noise of ancestral and DDIM steps (sampler default when absent)', parse: optional(parseNumber(0, 10)), default: undefined, configurable: true, unset: "the sampler's own" }),
  spec({ key: 'width', flags: '-W, --width <px>', description: "image width, a multiple of 8 (default: the model's native size)", parse: parseSize, default: undefined, configurable: true, unset: "the model's native size" }),
  spec({ key: 'height', flags: '-H, --height <px>', description: "image height, a multiple of 8 (default: the model's native size)", parse: parseSize, default: undefined, configurable: true, unset: "the model's native size" }),
  spec({ key: 'batchSize', flags: '-b, --batch-size <n>', description: 'images denoised together in one batch', parse: parseInteger(1, 64), default: 1, configurable: true }),
  spec({ key: 'batchCount', flags: '--batch-count <n>', description: 'batches run one after another', parse: parseInteger(1, 10000), default: 1, configurable: true }),
  spec({ key: 'vaeTiling', flags: '--vae-tiling', description: "decode in overlapping tiles (diffusers' tiled_decode): bounded memory for large images", parse: parseBoolean, default: false, configurable: true }),
  spec({ key: 'attention', flags: '--attention <how>', description: "fused: the UNet's attention as ONNX Runtime's MultiHeadAttention (faster, about half the memory at 512x512, same numbers to 1e-6); plain: as exported", parse: parseChoice(['fused', 'plain'] as const), default: 'fused', configurable: true }),
  spec({ key: 'quantize', flags: '--quantize <mode>', description: 'int8: the UNet and VAE decoder quantized (about 2x faster on CPU; calibrated once per model and cached; quality cost in the README); int8-matmul: only the UNet\'s MatMul layers (no calibration, near-lossless, about 20% faster); none: float as exported', parse: parseChoice(QUANTIZATIONS), default: 'none', configurable: true }),
  spec({ key: 'int8Format', flags: '--int8-format <format>', description: "how --quantize stores weights: auto (this CPU's exact format: u8s8 with VNNI, u8u8 elsewhere on x86; see diffuse doctor), u8s8, u8u8, or u8s7 (7-bit weights, ONNX Runtime's reduce-range)", parse: parseChoice(['auto', ...INT8_FORMATS] as const), default: 'auto', configurable: true }),
  spec({ key: 'optimizedCache', flags: '--optimized-cache <dir|off>', description: "where ONNX Runtime's optimised graphs are kept so later loads take seconds (CPU); off to disable (default: the model cache's optimized/ folder)", parse: parseString, default: '', configurable: true, unset: "the model cache's optimized/ folder" }),
  spec({ key: 'device', flags: '--device <name>', description: `execution provider: ${DEVICES.join(', ')}`, parse: parseChoice(DEVICES), default: 'cpu', configurable: true }),
  spec({ key: 'threads', flags: '--threads <n>', description: 'CPU threads for ONNX Runtime (default: physical cores)', parse: optional(parseInteger(1, 1024)), default: undefined, configurable: true, unset: 'physical cores' }),
  spec({ key: 'output', flags: '-o, --output <path>', description: 'a .png file, or a folder (images named by the template {seed}-{prompt})', parse: parseString, default: 'outputs', configurable: true }),
  spec({ key: 'overwrite', flags: '--overwrite', description: 'replace existing files instead of refusing', parse: parseBoolean, default: false, configurable: true }),
  spec({ key: 'offline', flags: '--offline', description: 'never touch the network: use only models already in the cache', parse: parseBoolean, default: false, configurable: true }),
  spec({ key: 'yes', flags: '-y, --yes', description: 'download a registry model that is not installed without asking', parse: parseBoolean, default: false, configurable: false }),
] as const satisfies readonly OptionSpec[];

export function optionSpec(key: SettingKey): OptionSpec {
  const found = (GENERATION_OPTIONS as readonly OptionSpec[]).find((o) => o.key === key);
  if (!found) throw new Error(`no option ${key}`);
  return found;
}

/** "--cfg-scale" for messages. */
export function flagName(s: OptionSpec): string {
  return s.flags.split(/[ ,]+/).find((f) => f.startsWith('--')) ?? s.flags;
}
