import { UsageError } from '../errors.js';
import { DEVICES, type Device } from '../onnx/session.js';
import { QUANTIZATIONS, type Quantization } from '../pipeline/quantize.js';
import { INT8_FORMATS, type Int8Format } from '../onnx/quantize-int8.js';
import { CONV_ALGORITHMS, type ConvAlgorithm } from '../pipeline/winograd.js';
import type { RngKind } from '../rng/types.js';
import type { SdeNoise, SeedMode } from '../pipeline/types.js';
import type { PromptWeighting } from '../pipeline/types.js';
import type { CondPadding } from '../text/prompt-pad.js';
import type { NoiseTable } from '../schedulers/index.js';
import type { ResizeMode } from '../image/resize-modes.js';
import { OUTPAINT_FILLS, type Extension, type OutpaintFill } from '../image/outpaint-canvas.js';
import { DEFAULT_QUALITY } from '../image/encode-image.js';
import { DEFAULT_MASKED_PADDING } from '../pipeline/tasks/inpaint.js';
import { DEFAULT_OVERLAP, DEFAULT_SEAM_BLUR } from '../pipeline/tasks/outpaint.js';
import { DEFAULT_REFINER_SWITCH } from '../pipeline/tasks/refiner.js';
import { DEFAULT_HIRES_STRENGTH, MAX_HIRES_SIDE } from '../pipeline/tasks/hires.js';
import { HIRES_UPSCALERS, type HiresUpscaler } from '../pipeline/types.js';
import type { MaskedContent, StrengthMode } from '../pipeline/types.js';
import { CONTROL_TYPES, parseControlSpecs, type ControlSpec } from './control-spec.js';

/** The subcommands that generate: each takes the options whose `commands` name it (all of them by default). */
export const GENERATING_COMMANDS = ['txt2img', 'img2img', 'inpaint', 'outpaint', 'depth2img'] as const;
export type GeneratingCommand = (typeof GENERATING_COMMANDS)[number];
const IMAGE_COMMANDS = ['img2img', 'inpaint', 'outpaint', 'depth2img'] as const;

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
  sigmaTable: 'auto' | NoiseTable;
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
  quality: number;
  overwrite: boolean;
  offline: boolean;
  yes: boolean;
  vaeTiling: boolean;
  optimizedCache: string;
  attention: 'fused' | 'plain';
  conv: ConvAlgorithm;
  deepCache: number;
  tokenMerging: number;
  vae: string | undefined;
  preview: string | undefined;
  previewEvery: number;
  previewMethod: 'auto' | 'taesd' | 'latent2rgb';
  refiner: string | undefined;
  refinerSwitch: number | undefined;
  hiresScale: number | undefined;
  hiresSize: { width: number; height: number } | undefined;
  /** One of HIRES_UPSCALERS, or an upscaler registry id or .onnx file (resolved by the command). */
  hiresUpscaler: string;
  hiresSteps: number;
  hiresStrength: number;
  hiresPrompt: string | undefined;
  hiresNegative: string | undefined;
  hiresSampler: string | undefined;
  hiresSchedule: string | undefined;
  hiresCfg: number | undefined;
  sdUpscale: number | undefined;
  sdUpscaleUpscaler: string;
  sdUpscaleOverlap: number;
  quantize: Quantization;
  int8Format: 'auto' | Int8Format;
  promptWeighting: PromptWeighting;
  padCond: 'none' | CondPadding;
  clipSkip: number;
  embeddingsDir: string | undefined;
  watermark: boolean | string;
  safetyChecker: boolean;
  safetyAction: 'black' | 'blur';
  loraDir: string | undefined;
  hypernetworkDir: string | undefined;
  initImage: string | undefined;
  resizeMode: ResizeMode;
  strength: number;
  strengthMode: StrengthMode;
  vaeLatents: 'sample' | 'mean';
  mask: string | undefined;
  maskFromAlpha: boolean;
  invertMask: boolean;
  maskBlur: number;
  inpaintArea: 'whole' | 'masked';
  maskedPadding: number;
  maskedContent: MaskedContent;
  extend: Extension | undefined;
  fill: OutpaintFill;
  overlap: number;
  passSize: number | undefined;
  depthMap: string | undefined;
  control: ControlSpec[];
  latents: string | undefined;
}

export type SettingKey = keyof Settings;

export interface OptionSpec<K extends SettingKey = SettingKey> {
  key: K;
  flags: string;
  description: string;
  parse: OptionParser<Settings[K]>;
  default: Settings[K];
  /** May a config file set it? (Per-image values such as the seed may not.) */
  configurable: boolean;
  /** What an unset (undefined) value means, for `diffuse config`. */
  unset?: string;
  /** The subcommands that take it (default: every generating one). */
  commands?: readonly GeneratingCommand[];
  /** Defaults that differ per subcommand (img2img's strength is 0.75, inpaint's 1). */
  defaultFor?: Partial<Record<GeneratingCommand, Settings[K]>>;
  /** The flag may be given several times; parse then receives every value, in order. */
  repeatable?: true;
}

function spec<K extends SettingKey>(s: OptionSpec<K>): OptionSpec<K> {
  return s;
}

// Decimal only: Number() would also read '0x10' as 16, '1e3' as 1000, '0b11' and '' (as 0).
const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** A number as typed (decimal digits) or as a config file's JSON number; NaN for anything else. */
function numberOf(raw: unknown, pattern: RegExp): number {
  if (typeof raw === 'number') return raw;
  if (typeof raw !== 'string') return Number.NaN;
  const text = raw.trim();
  return pattern.test(text) ? Number(text) : Number.NaN;
}

/** What numbers a parser takes: --xyz expands ranges ("10-30 (+10)") of whole numbers or of any. */
export type NumberKind = 'integer' | 'number';
export type OptionParser<T> = ((raw: unknown, label: string) => T) & { numberKind?: NumberKind };

const numeric = <T>(parse: (raw: unknown, label: string) => T, numberKind: NumberKind): OptionParser<T> => Object.assign(parse, { numberKind });

export function parseInteger(min: number, max = Number.MAX_SAFE_INTEGER) {
  return numeric((raw: unknown, label: string): number => {
    const n = numberOf(raw, INTEGER_TEXT);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`${label} must be a whole number from ${min} to ${max} (got '${String(raw)}')`);
    }
    return n;
  }, 'integer');
}

export function parseNumber(min: number, max = Infinity) {
  return numeric((raw: unknown, label: string): number => {
    const n = numberOf(raw, NUMBER_TEXT);
    if (!Number.isFinite(n) || n < min || n > max) {
      const range = max === Infinity ? `at least ${min}` : `from ${min} to ${max}`;
      throw new UsageError(`${label} must be a number ${range} (got '${String(raw)}')`);
    }
    return n;
  }, 'number');
}

export function parseChoice<T extends string>(choices: readonly T[]) {
  return (raw: unknown, label: string): T => {
    const v = String(raw).toLowerCase() as T;
    if (!choices.includes(v)) throw new UsageError(`${label} must be one of ${choices.join(', ')} (got '${String(raw)}')`);
    return v;
  };
}

/** Text as typed; a config file must give a string too (42 is not a model name). */
function parseString(raw: unknown, label: string): string {
  if (typeof raw !== 'string') throw new UsageError(`${label} must be text (got ${JSON.stringify(raw)})`);
  return raw;
}

/** A name or path: empty text is a mistake (an unset variable in a script), never "the default". */
function parseName(raw: unknown, label: string): string {
  const text = parseString(raw, label);
  if (text.trim() === '') throw new UsageError(`${label} is empty; give a value or leave the option out`);
  return text;
}

/** true (the flag alone, or `true` in a config) for the SDXL message, a text for its UTF-8 bytes. */
const parseWatermark = (raw: unknown, label: string): boolean | string => {
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  if (typeof raw !== 'string' || raw === '') throw new UsageError(`${label} takes nothing (the SDXL message) or a text (got '${String(raw)}')`);
  return raw;
};
const parsePngPath = (raw: unknown, label: string): string => {
  const path = String(raw);
  if (!/\.png$/i.test(path)) throw new UsageError(`${label} must name a .png file (got '${path}')`);
  return path;
};
const parseNpyPath = (raw: unknown, label: string): string => {
  const path = parseName(raw, label);
  if (!/\.npy$/i.test(path)) throw new UsageError(`${label} must name a .npy file (numpy's format, as diffuse invert writes; got '${path}')`);
  return path;
};
const parseBoolean = (raw: unknown, label: string): boolean => {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new UsageError(`${label} must be true or false (got '${String(raw)}')`);
};

function optional<T>(parse: OptionParser<T>): OptionParser<T | undefined> {
  const wrapped = (raw: unknown, label: string): T | undefined => (raw === undefined ? undefined : parse(raw, label));
  return parse.numberKind ? numeric(wrapped, parse.numberKind) : wrapped;
}

/** Multiples of 8, as Stable Diffusion's VAE needs (the model's own latent ratio is checked by the pipeline). */
export function parseMultipleOf8(min: number, max: number) {
  return numeric((raw: unknown, label: string): number => {
    const n = parseInteger(min, max)(raw, label);
    if (n % 8 !== 0) throw new UsageError(`${label} must be a multiple of 8 (got ${n}; try ${Math.max(8, Math.round(n / 8) * 8)})`);
    return n;
  }, 'integer');
}

/** The largest side --width/--height (and the latents of --latents) may paint. */
export const MAX_SIDE = 8192;
const parseSize = optional(parseMultipleOf8(8, MAX_SIDE));

/** A hires fix's factor: a finite number above 1. */
function parseHiresScale(raw: unknown, label: string): number {
  const n = numberOf(raw, NUMBER_TEXT);
  if (!Number.isFinite(n) || n <= 1 || n > 16) throw new UsageError(`${label} must be a number above 1 and at most 16 (got '${String(raw)}'); e.g. ${label} 2`);
  return n;
}

/** "WxH", multiples of 8 (A1111's "Resize width to" and "Resize height to"). */
function parseHiresSize(raw: unknown, label: string): { width: number; height: number } {
  const m = /^\s*(\d+)\s*x\s*(\d+)\s*$/i.exec(String(raw));
  if (!m) throw new UsageError(`${label} must be WxH, e.g. ${label} 1024x1024 (got '${String(raw)}')`);
  const side = parseMultipleOf8(8, MAX_HIRES_SIDE);
  return { width: side(m[1], `${label} width`), height: side(m[2], `${label} height`) };
}

/** A built-in hires upscaler by name (any case), else the name or path as typed, for the command to resolve. */
function parseHiresUpscaler(raw: unknown, label: string): string {
  const text = parseName(raw, label).trim();
  return (HIRES_UPSCALERS as readonly string[]).find((u) => u === text.toLowerCase()) ?? text;
}

/** Whether a --hires-upscaler value is one of the built-in upscalers (else a model upscaler to resolve). */
export const isBuiltinHiresUpscaler = (name: string): name is HiresUpscaler => (HIRES_UPSCALERS as readonly string[]).includes(name);

/** The hires strength: above 0 (a pass that changes nothing is no pass) and at most 1. */
function parseHiresStrength(raw: unknown, label: string): number {
  const n = numberOf(raw, NUMBER_TEXT);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new UsageError(`${label} must be a number above 0 and at most 1 (got '${String(raw)}')`);
  return n;
}

/** "128" (every side) or "left=128,right=0,top=64,bottom=256", each side once. */
function parseExtension(raw: unknown, label: string): Extension {
  const text = String(raw).trim();
  const side = parseMultipleOf8(0, 4096);
  if (/^\d+$/.test(text)) {
    const v = side(text, `${label} size`);
    if (v === 0) throw new UsageError(`${label} 0 adds nothing; give the pixels to add, e.g. ${label} 128`);
    return { left: v, right: v, top: v, bottom: v };
  }
  const ext: Extension = { left: 0, right: 0, top: 0, bottom: 0 };
  const seen = new Set<string>();
  for (const part of text.split(',')) {
    const [name, value] = part.split('=').map((p) => p.trim());
    if (!name || value === undefined || !(name in ext)) {
      throw new UsageError(`${label}: cannot read '${part}'; write left=N,right=N,top=N,bottom=N (multiples of 8)`);
    }
    if (seen.has(name)) throw new UsageError(`${label}: ${name} is given twice`);
    seen.add(name);
    ext[name as keyof Extension] = side(value, `${label} ${name}`);
  }
  if (ext.left + ext.right + ext.top + ext.bottom === 0) throw new UsageError(`${label}: every side is 0, nothing to add`);
  return ext;
}

export const MAX_SEED = 2 ** 32 - 1;

export const GENERATION_OPTIONS = [
  spec({ key: 'model', flags: '-m, --model <ref>', description: "model: a registry id (see 'diffuse models list'), hf:org/repo@revision, a diffusers ONNX folder, or a checkpoint file or diffusers PyTorch folder (converted once into the cache) (default: the registry's default)", parse: parseName, default: '', configurable: true, unset: "the registry's default" }),
  spec({ key: 'negativePrompt', flags: '-n, --negative-prompt <text>', description: 'what the image should not show', parse: parseString, default: '', configurable: true, unset: 'empty' }),
  spec({ key: 'steps', flags: '-s, --steps <n>', description: 'sampling steps', parse: parseInteger(1, 1000), default: 20, configurable: true }),
  spec({ key: 'cfgScale', flags: '-g, --cfg-scale <x>', description: 'classifier-free guidance scale (1 or less: no guidance, no negative prompt)', parse: parseNumber(0, 100), default: 7, configurable: true }),
  spec({ key: 'cfgRescale', flags: '--cfg-rescale <x>', description: 'guidance rescale for v-prediction models (0 = off, 0.7 typical)', parse: parseNumber(0, 1), default: 0, configurable: true }),
  spec({ key: 'sampler', flags: '--sampler <name>', description: "sampler id (euler_a, dpmpp_2m, ...) or A1111 name ('DPM++ 2M Karras')", parse: parseString, default: 'euler_a', configurable: true }),
  spec({ key: 'schedule', flags: '--schedule <name>', description: "noise schedule: normal, karras, exponential, uniform, sgm_uniform, simple, ddim_uniform, beta, kl_optimal, align_your_steps, linear_quadratic, polyexponential, lcm (and A1111's variants: see the README; default: the sampler's own)", parse: optional(parseString), default: undefined, configurable: true, unset: "the sampler's own" }),
  spec({ key: 'sigmaTable', flags: '--sigma-table <table>', description: "the model's sigmas as diffusers (float32 betas), a1111 or comfyui (LDM's float64 betas) compute them; auto: as the names say (A1111's sampler names and schedules use A1111's, ComfyUI-only ones ComfyUI's, normal and our ids diffusers')", parse: parseChoice(['auto', 'diffusers', 'a1111', 'comfyui'] as const), default: 'auto', configurable: true }),
  spec({ key: 'seed', flags: '--seed <n>', description: `seed of the first image (0..${MAX_SEED}); random when absent, always recorded`, parse: optional(parseInteger(0, MAX_SEED)), default: undefined, configurable: false }),
  spec({ key: 'variationSeed', flags: '--variation-seed <n>', description: "A1111's variation seed: the noise is slerped towards this seed's (random when a strength is given without it)", parse: optional(parseInteger(0, MAX_SEED)), default: undefined, configurable: false }),
  spec({ key: 'variationStrength', flags: '--variation-strength <x>', description: 'how far towards the variation seed (0 = none, 1 = that seed)', parse: parseNumber(0, 1), default: 0, configurable: false }),
  spec({ key: 'promptWeighting', flags: '--prompt-weighting <mode>', description: "prompt syntax: a1111 ((emphasis:1.2), [edits:10], BREAK, long prompts), comfy (same syntax, ComfyUI's weighting), none (plain text, 77 tokens, as diffusers)", parse: parseChoice(['a1111', 'comfy', 'none'] as const), default: 'a1111', configurable: true }),
  spec({ key: 'padCond', flags: '--pad-cond <how>', description: "prompt and negative of different lengths: none (two UNet calls, A1111's default), empty-chunks or v0 (A1111's padding options)", parse: parseChoice(['none', 'empty-chunks', 'v0'] as const), default: 'none', configurable: true }),
  spec({ key: 'clipSkip', flags: '--clip-skip <n>', description: 'use the hidden states of the n-th last text encoder layer (A1111 numbering: 1 = last)', parse: parseInteger(1, 12), default: 1, configurable: true }),
  spec({ key: 'vae', flags: '--vae <ref>', description: "another VAE instead of the model's: a VAE file (.safetensors, .ckpt, .pt: A1111's VAE files, diffusers' layout, TAESD's decoder), taesd or taesdxl (the registry's tiny decoders), or a folder with vae_decoder/ (and vae_encoder/ for img2img) in the diffusers ONNX layout", parse: optional(parseName), default: undefined, configurable: true, unset: "the model's" }),
  spec({ key: 'preview', flags: '--preview <path.png>', description: 'write a live preview of the image being sampled to this PNG (replaced atomically, so image viewers that reload it never see half a file)', parse: optional(parsePngPath), default: undefined, configurable: true, unset: 'none' }),
  spec({ key: 'previewEvery', flags: '--preview-every <n>', description: 'with --preview: every n sampling steps (a TAESD preview costs about 1/15 of a full VAE decode, measured in bench/vae-decode.ts)', parse: parseInteger(1, 1000), default: 5, configurable: true }),
  spec({ key: 'previewMethod', flags: '--preview-method <how>', description: "with --preview: taesd (the tiny decoder, full size: --vae taesd, or taesd/taesdxl pulled), latent2rgb (ComfyUI's latent-to-RGB factors, 1/8 size), or auto (taesd when installed)", parse: parseChoice(['auto', 'taesd', 'latent2rgb'] as const), default: 'auto', configurable: true }),
  spec({ key: 'refiner', flags: '--refiner <ref>', description: "a second model (the SDXL refiner: registry id, hf:org/repo@revision or folder) that continues the same sampling from --refiner-switch on, as A1111's refiner", parse: optional(parseName), default: undefined, configurable: true, commands: ['txt2img', 'img2img'], unset: 'none' }),
  spec({ key: 'refinerSwitch', flags: '--refiner-switch <x>', description: `with --refiner: the completed fraction of the schedule where the refiner takes over (A1111's "Switch at"; default ${DEFAULT_REFINER_SWITCH})`, parse: optional(parseNumber(0.01, 1)), default: undefined, configurable: true, commands: ['txt2img', 'img2img'], unset: `${DEFAULT_REFINER_SWITCH} with --refiner` }),
  spec({ key: 'hiresScale', flags: '--hires-scale <x>', description: "txt2img: hires fix (A1111's \"Hires. fix\"): paint at this factor of --width/--height by upscaling the first pass and painting it again (img2img at --hires-strength)", parse: optional(parseHiresScale), default: undefined, configurable: true, commands: ['txt2img'], unset: 'off' }),
  spec({ key: 'hiresSize', flags: '--hires-size <WxH>', description: "txt2img: hires fix to this size (A1111's \"Resize width/height to\"): the first pass's aspect kept, the excess cropped", parse: optional(parseHiresSize), default: undefined, configurable: true, commands: ['txt2img'], unset: 'off' }),
  spec({ key: 'hiresUpscaler', flags: '--hires-upscaler <name>', description: `with --hires-scale/--hires-size: ${HIRES_UPSCALERS.join(', ')} (latent-*: the latents resized as A1111's latent modes; lanczos, nearest, none: the picture decoded, resized and encoded), or an upscaler registry id or .onnx file (ESRGAN family, as diffuse upscale --model)`, parse: parseHiresUpscaler, default: 'latent', configurable: true, commands: ['txt2img'] }),
  spec({ key: 'hiresSteps', flags: '--hires-steps <n>', description: 'with the hires fix: steps of the second pass (0: as many as the first)', parse: parseInteger(0, 1000), default: 0, configurable: true, commands: ['txt2img'] }),
  spec({ key: 'hiresStrength', flags: '--hires-strength <x>', description: "with the hires fix: denoising strength of the second pass, above 0 and at most 1", parse: parseHiresStrength, default: DEFAULT_HIRES_STRENGTH, configurable: true, commands: ['txt2img'] }),
  spec({ key: 'hiresPrompt', flags: '--hires-prompt <text>', description: 'with the hires fix: the prompt of the second pass', parse: optional(parseString), default: undefined, configurable: true, commands: ['txt2img'], unset: 'the prompt' }),
  spec({ key: 'hiresNegative', flags: '--hires-negative <text>', description: 'with the hires fix: the negative prompt of the second pass', parse: optional(parseString), default: undefined, configurable: true, commands: ['txt2img'], unset: 'the negative prompt' }),
  spec({ key: 'hiresSampler', flags: '--hires-sampler <name>', description: 'with the hires fix: the sampler of the second pass (any --sampler name)', parse: optional(parseName), default: undefined, configurable: true, commands: ['txt2img'], unset: 'the sampler' }),
  spec({ key: 'hiresSchedule', flags: '--hires-schedule <name>', description: 'with the hires fix: the schedule of the second pass (any --schedule name)', parse: optional(parseName), default: undefined, configurable: true, commands: ['txt2img'], unset: 'the schedule' }),
  spec({ key: 'hiresCfg', flags: '--hires-cfg <x>', description: 'with the hires fix: the CFG scale of the second pass', parse: optional(parseNumber(0, 100)), default: undefined, configurable: true, commands: ['txt2img'], unset: 'the CFG scale' }),
  spec({ key: 'sdUpscale', flags: '--sd-upscale <x>', description: "img2img: A1111's SD upscale: enlarge the picture x times with --sd-upscale-upscaler, then repaint it in tiles of --width x --height (default: the model's native size) blended back", parse: optional(parseNumber(1, 8)), default: undefined, configurable: false, commands: ['img2img'], unset: 'off' }),
  spec({ key: 'sdUpscaleUpscaler', flags: '--sd-upscale-upscaler <ref>', description: 'with --sd-upscale: lanczos, nearest, none (tile the picture as it is), a registry upscaler (realesrgan-x4plus, ...) or a .onnx file', parse: parseName, default: 'lanczos', configurable: true, commands: ['img2img'] }),
  spec({ key: 'sdUpscaleOverlap', flags: '--sd-upscale-overlap <n>', description: "with --sd-upscale: pixels neighbouring tiles share, feathered (A1111's Tile overlap)", parse: parseInteger(0, 256), default: 64, configurable: true, commands: ['img2img'] }),
  spec({ key: 'embeddingsDir', flags: '--embeddings-dir <dir>', description: 'textual-inversion embeddings (.safetensors, .pt, .bin), used where their file name appears in a prompt', parse: optional(parseName), default: undefined, configurable: true, unset: 'none' }),
  spec({ key: 'loraDir', flags: '--lora-dir <dir>', description: "LoRA and LyCORIS files (.safetensors, .pt, .ckpt; subfolders searched), used by <lora:name:weight> or <lora:name:te:unet> in a prompt", parse: optional(parseName), default: undefined, configurable: true, unset: 'none' }),
  spec({ key: 'hypernetworkDir', flags: '--hypernetwork-dir <dir>', description: "A1111 hypernetworks (.pt; subfolders searched), used by <hypernet:name:strength> in a prompt", parse: optional(parseName), default: undefined, configurable: true, unset: 'none' }),
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
  spec({ key: 'attention', flags: '--attention <how>', description: "fused: the UNet's and ControlNets' attention as ONNX Runtime's MultiHeadAttention (faster, about half the memory at 512x512, same numbers to 1e-6); plain: as exported", parse: parseChoice(['fused', 'plain'] as const), default: 'fused', configurable: true }),
  spec({ key: 'conv', flags: '--conv <how>', description: "the UNet's 3x3 convolutions on the CPU (float: fp32 and --quantize int8-matmul), as Winograd F(2x2,3x3) (fewer multiplies; rewritten once per model and cached; same numbers to 2e-6; speed in the README): auto, those of 640x320 to 1920x640 channels (3-6% off a step, +0.5 GB peak memory); winograd, all (8-11% off, +2 GB); direct, none (ONNX Runtime's Conv)", parse: parseChoice(CONV_ALGORITHMS), default: 'auto', configurable: true }),
  spec({ key: 'deepCache', flags: '--deep-cache <n>', description: "DeepCache (the DeepCache package's uniform schedule, branch 0): every n-th UNet call runs whole and the calls between reuse its deep feature, running only the shallow layers (faster; quality cost in the README); 1 is off", parse: parseInteger(1, 1000), default: 1, configurable: true }),
  spec({ key: 'tokenMerging', flags: '--token-merging <ratio>', description: "token merging (ToMe for SD, the tomesd package as A1111 applies it): the fraction of the tokens merged before self-attention in the UNet's full-resolution transformer blocks (faster; quality cost in the README); A1111's \"Token merging ratio\"; 0 is off", parse: parseNumber(0, 0.9), default: 0, configurable: true }),
  spec({ key: 'quantize', flags: '--quantize <mode>', description: 'int8: the UNet and VAE decoder quantized (about 2x faster on CPU; calibrated once per model and cached; quality cost in the README); int8-matmul: only the UNet\'s MatMul layers (no calibration, near-lossless, about 20% faster); int8-attention: int8 with the attention\'s two products in int8 too, its attention unfused (slower than int8 on CPU: measured in the README); none: float as exported', parse: parseChoice(QUANTIZATIONS), default: 'none', configurable: true }),
  spec({ key: 'int8Format', flags: '--int8-format <format>', description: "how --quantize stores weights: auto (this CPU's exact format: u8s8 with VNNI, u8u8 elsewhere on x86; see diffuse doctor), u8s8, u8u8, or u8s7 (7-bit weights, ONNX Runtime's reduce-range)", parse: parseChoice(['auto', ...INT8_FORMATS] as const), default: 'auto', configurable: true }),
  spec({ key: 'watermark', flags: '--watermark [text]', description: "embed an invisible watermark (invisible-watermark's dwtDct) in every image: the SDXL message of Stability's scripts and diffusers, or this text; images need 256x256 pixels or more; diffuse watermark detect reads it", parse: parseWatermark, default: false, configurable: true }),
  spec({ key: 'safetyChecker', flags: '--safety-checker', description: "run the model's safety checker (safety_checker/ + feature_extractor/, as diffusers' SD pipelines do) on every image and replace a flagged one; recorded as Safety checker: passed or flagged", parse: parseBoolean, default: false, configurable: true }),
  spec({ key: 'safetyAction', flags: '--safety-action <action>', description: "what replaces an image the safety checker flags: black (diffusers') or blur", parse: parseChoice(['black', 'blur'] as const), default: 'black', configurable: true }),
  spec({ key: 'optimizedCache', flags: '--optimized-cache <dir|off>', description: "where ONNX Runtime's optimised graphs are kept so later loads take seconds (CPU); off to disable (default: the model cache's optimized/ folder)", parse: parseName, default: '', configurable: true, unset: "the model cache's optimized/ folder" }),
  spec({ key: 'device', flags: '--device <name>', description: `execution provider: ${DEVICES.join(', ')}`, parse: parseChoice(DEVICES), default: 'cpu', configurable: true }),
  spec({ key: 'threads', flags: '--threads <n>', description: 'CPU threads for ONNX Runtime (default: physical cores)', parse: optional(parseInteger(1, 1024)), default: undefined, configurable: true, unset: 'physical cores' }),
  spec({ key: 'output', flags: '-o, --output <path>', description: "a .png, .jpg, .webp or .avif file, a folder (images named {seed}-{prompt}.png), or a folder and a name template ('out/{seed}-{prompt:40}.webp')", parse: parseName, default: 'outputs', configurable: true }),
  spec({ key: 'quality', flags: '--quality <n>', description: "JPEG, WebP and AVIF quality (A1111's default); the parameters go into EXIF as A1111 writes them", parse: parseInteger(1, 100), default: DEFAULT_QUALITY, configurable: true }),
  spec({ key: 'overwrite', flags: '--overwrite', description: 'replace existing files instead of refusing', parse: parseBoolean, default: false, configurable: true }),
  spec({ key: 'offline', flags: '--offline', description: 'never touch the network: use only models already in the cache', parse: parseBoolean, default: false, configurable: true }),
  // img2img, inpaint, outpaint, depth2img: the picture, and how it becomes the request's init.
  spec({ key: 'initImage', flags: '-i, --init-image <path>', description: 'the picture to start from (PNG, JPEG, WebP)', parse: optional(parseName), default: undefined, configurable: false, commands: IMAGE_COMMANDS, unset: 'none' }),
  spec({ key: 'resizeMode', flags: '--resize-mode <mode>', description: 'fit the picture to --width/--height: just-resize, crop-and-resize, resize-and-fill', parse: parseChoice(['just-resize', 'crop-and-resize', 'resize-and-fill'] as const), default: 'just-resize', configurable: true, commands: ['img2img', 'inpaint', 'depth2img'] }),
  spec({ key: 'strength', flags: '--strength <x>', description: 'how much changes: 0 keeps the picture (VAE round trip), 1 starts from noise', parse: parseNumber(0, 1), default: 0.75, configurable: true, commands: IMAGE_COMMANDS, defaultFor: { depth2img: 0.8, inpaint: 1, outpaint: 1 } }),
  spec({ key: 'strengthMode', flags: '--strength-mode <mode>', description: 'how --strength becomes steps: diffusers (int(steps x strength)) or a1111 (one step more, never the whole schedule)', parse: parseChoice(['diffusers', 'a1111'] as const), default: 'diffusers', configurable: true, commands: IMAGE_COMMANDS }),
  spec({ key: 'vaeLatents', flags: '--vae-latents <mode>', description: "encode the picture to the VAE's mean, or a sample drawn with the seed (diffusers)", parse: parseChoice(['sample', 'mean'] as const), default: 'sample', configurable: true, commands: IMAGE_COMMANDS }),
  spec({ key: 'mask', flags: '--mask <path>', description: 'white repaints, black keeps; another size of the same aspect is resized', parse: optional(parseName), default: undefined, configurable: false, commands: ['inpaint'], unset: 'none' }),
  spec({ key: 'maskFromAlpha', flags: '--mask-from-alpha', description: "repaint the init image's transparent pixels", parse: parseBoolean, default: false, configurable: true, commands: ['inpaint'] }),
  spec({ key: 'invertMask', flags: '--invert-mask', description: 'repaint the black area instead', parse: parseBoolean, default: false, configurable: true, commands: ['inpaint'] }),
  spec({ key: 'maskBlur', flags: '--mask-blur <px>', description: 'feather the mask edge (the result blends into the original through it); outpaint: the seam', parse: parseInteger(0, 64), default: 4, configurable: true, commands: ['inpaint', 'outpaint'], defaultFor: { outpaint: DEFAULT_SEAM_BLUR } }),
  spec({ key: 'inpaintArea', flags: '--inpaint-area <area>', description: 'whole (the whole picture at --width/--height) or masked (a crop around the mask, painted at full resolution and pasted back)', parse: parseChoice(['whole', 'masked'] as const), default: 'whole', configurable: true, commands: ['inpaint'] }),
  spec({ key: 'maskedPadding', flags: '--masked-padding <px>', description: 'with --inpaint-area masked: context around the mask', parse: parseInteger(0, 1024), default: DEFAULT_MASKED_PADDING, configurable: true, commands: ['inpaint'] }),
  spec({ key: 'maskedContent', flags: '--masked-content <what>', description: 'what the masked area starts from: original, fill (surrounding colours), latent-noise, latent-nothing', parse: parseChoice(['original', 'fill', 'latent-noise', 'latent-nothing'] as const), default: 'original', configurable: true, commands: ['inpaint'] }),
  spec({ key: 'extend', flags: '--extend <sides>', description: 'pixels to add: 128 (every side) or left=128,right=128,top=0,bottom=256 (multiples of 8)', parse: optional(parseExtension), default: undefined, configurable: true, commands: ['outpaint'], unset: 'none' }),
  spec({ key: 'fill', flags: '--fill <how>', description: 'pre-fill of the new area: stretch (edge pixels), blur, noise', parse: parseChoice(OUTPAINT_FILLS), default: 'stretch', configurable: true, commands: ['outpaint'] }),
  spec({ key: 'overlap', flags: '--overlap <px>', description: 'how far into the old picture the seam is repainted (multiple of 8)', parse: parseMultipleOf8(0, 256), default: DEFAULT_OVERLAP, configurable: true, commands: ['outpaint'] }),
  spec({ key: 'passSize', flags: '--pass-size <px>', description: "largest extension per pass (default: half the model's native size)", parse: optional(parseMultipleOf8(8, 4096)), default: undefined, configurable: true, commands: ['outpaint'], unset: "half the model's native size" }),
  spec({ key: 'depthMap', flags: '--depth-map <path>', description: "the depth to follow: a grey picture, white = near (any size; stretched to the full range); default: the model's depth_estimator/ reads the picture", parse: optional(parseName), default: undefined, configurable: false, commands: ['depth2img'], unset: "the model's estimate" }),
  spec({ key: 'control', flags: '--control <spec>', description: `a ControlNet unit, repeatable (multi-ControlNet): type=${CONTROL_TYPES.join('|')},image=PICTURE,model=DIR|FILE|ID[,weight=1,start=0,end=1,guess,resize=just-resize|crop-and-resize|resize-and-fill,low=100,high=200,level=127,res=512|pixel-perfect,detector=FILE|ID]`, parse: parseControlSpecs, default: [], configurable: false, commands: ['txt2img', 'img2img', 'inpaint', 'outpaint'], unset: 'none', repeatable: true }),
  spec({ key: 'latents', flags: '--latents <file.npy>', description: "start from these latents instead of the seed's noise: a .npy of shape (batch, 4, height/8, width/8), e.g. what diffuse invert wrote (as diffusers' latents= argument: scaled by the sampler's initial sigma); sets the size", parse: optional(parseNpyPath), default: undefined, configurable: false, commands: ['txt2img'], unset: "the seed's noise" }),
  spec({ key: 'yes', flags: '-y, --yes', description: 'download a registry model that is not installed without asking', parse: parseBoolean, default: false, configurable: false }),
] as const satisfies readonly OptionSpec[];

/** The options of one subcommand, in table order. */
export function optionsFor(command: GeneratingCommand): OptionSpec[] {
  return (GENERATION_OPTIONS as readonly OptionSpec[]).filter((o) => !o.commands || o.commands.includes(command));
}

/** An option's default for a subcommand. */
export function defaultFor(o: OptionSpec, command: GeneratingCommand): unknown {
  return o.defaultFor?.[command] ?? o.default;
}

export function optionSpec(key: SettingKey): OptionSpec {
  const found = (GENERATION_OPTIONS as readonly OptionSpec[]).find((o) => o.key === key);
  if (!found) throw new Error(`no option ${key}`);
  return found;
}

/** "--cfg-scale" for messages. */
export function flagName(s: OptionSpec): string {
  return s.flags.split(/[ ,]+/).find((f) => f.startsWith('--')) ?? s.flags;
}
