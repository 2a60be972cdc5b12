import { UsageError } from '../errors.js';
import { DEVICES, type Device } from '../onnx/session.js';
import { LR_SCHEDULES, type LrScheduleName } from '../train/lr-schedule.js';
import { MAX_SEED, parseChoice, parseInteger, parseNumber } from '../settings/options.js';

/**
 * embed-train's flags: one table for its commander options, its --help and the README's table
 * (test/readme.test.ts checks every flag is there). Generation's table (options.ts) is for the
 * generating commands; training shares only the model, device and seed conventions.
 */
export interface TrainSettings {
  model: string;
  images: string;
  token: string;
  initWord: string;
  vectors: number;
  template: 'object' | 'style';
  templateFile: string | undefined;
  resolution: number | undefined;
  centerCrop: boolean;
  flipP: number;
  steps: number;
  lr: string;
  lrSchedule: LrScheduleName;
  lrWarmup: number;
  batchSize: number;
  gradientAccumulation: number;
  weightDecay: number;
  seed: number | undefined;
  saveEvery: number;
  previewEvery: number;
  previewPrompt: string | undefined;
  output: string;
  overwrite: boolean;
  resume: boolean;
  device: Device;
  threads: number | undefined;
  offline: boolean;
  yes: boolean;
}

export interface TrainOptionSpec<K extends keyof TrainSettings = keyof TrainSettings> {
  key: K;
  flags: string;
  description: string;
  parse: (raw: unknown, label: string) => TrainSettings[K];
  default: TrainSettings[K];
  /** For the README: what the default means when it is computed. */
  defaultText?: string;
  required?: boolean;
}

function spec<K extends keyof TrainSettings>(s: TrainOptionSpec<K>): TrainOptionSpec<K> {
  return s;
}

const text = (raw: unknown): string => String(raw);
const flag = (raw: unknown): boolean => raw === true || raw === 'true';
function optional<T>(parse: (raw: unknown, label: string) => T) {
  return (raw: unknown, label: string): T | undefined => (raw === undefined ? undefined : parse(raw, label));
}
function multipleOf8(raw: unknown, label: string): number {
  const n = parseInteger(8, 4096)(raw, label);
  if (n % 8 !== 0) throw new UsageError(`${label} must be a multiple of 8 (got ${n})`);
  return n;
}

export const TRAIN_OPTIONS = [
  spec({ key: 'model', flags: '-m, --model <ref>', description: 'the model to train for: a registry id, hf:org/repo@revision, a local id or a diffusers ONNX folder (float32, plain attention export)', parse: text, default: '', required: true }),
  spec({ key: 'images', flags: '--images <dir>', description: 'folder of training pictures (PNG, JPEG, WebP, ...; other files are passed over; a .txt beside a picture is its [filewords] caption)', parse: text, default: '', required: true }),
  spec({ key: 'token', flags: '--token <name>', description: 'the new word, e.g. <my-cat>: also the embedding\'s file name, the word prompts use', parse: text, default: '', required: true }),
  spec({ key: 'initWord', flags: '--init-word <text>', description: "text whose token embeddings start the vectors (A1111's rule: vector i copies token i*k/n)", parse: text, default: '*' }),
  spec({ key: 'vectors', flags: '--vectors <n>', description: 'vectors per token (diffusers num_vectors, A1111 "number of vectors per token")', parse: parseInteger(1, 75), default: 1 }),
  spec({ key: 'template', flags: '--template <set>', description: "caption templates: object (diffusers' \"a photo of a {}\" list) or style (\"a painting in the style of {}\")", parse: parseChoice(['object', 'style'] as const), default: 'object' }),
  spec({ key: 'templateFile', flags: '--template-file <path>', description: "A1111 template file instead: one caption per line, [name] for the token, [filewords] for the picture's caption", parse: optional(text), default: undefined, defaultText: 'none' }),
  spec({ key: 'resolution', flags: '--resolution <px>', description: 'side of the square the pictures are resized to (PIL bicubic, as diffusers)', parse: optional(multipleOf8), default: undefined, defaultText: "the model's native size" }),
  spec({ key: 'centerCrop', flags: '--center-crop', description: 'crop each picture to its centred square first (otherwise it is stretched)', parse: flag, default: false }),
  spec({ key: 'flipP', flags: '--flip-p <x>', description: 'probability of a horizontal flip per sample', parse: parseNumber(0, 1), default: 0.5 }),
  spec({ key: 'steps', flags: '--steps <n>', description: 'optimizer steps', parse: parseInteger(1, 1_000_000), default: 3000 }),
  spec({ key: 'lr', flags: '--lr <rate>', description: "learning rate, or A1111's schedule '0.005:100, 1e-3:1000, 1e-5'", parse: text, default: '0.005' }),
  spec({ key: 'lrSchedule', flags: '--lr-schedule <name>', description: `diffusers' schedules: ${LR_SCHEDULES.join(', ')}`, parse: parseChoice(LR_SCHEDULES), default: 'constant' }),
  spec({ key: 'lrWarmup', flags: '--lr-warmup <n>', description: 'steps of linear warmup (constant with warmup is constant_with_warmup)', parse: parseInteger(0, 1_000_000), default: 0 }),
  spec({ key: 'batchSize', flags: '-b, --batch-size <n>', description: 'pictures per UNet call', parse: parseInteger(1, 64), default: 1 }),
  spec({ key: 'gradientAccumulation', flags: '--gradient-accumulation <n>', description: 'batches whose gradients add up before each optimizer step', parse: parseInteger(1, 1024), default: 1 }),
  spec({ key: 'weightDecay', flags: '--weight-decay <x>', description: "AdamW's decoupled weight decay (diffusers 0.01; A1111 uses 0)", parse: parseNumber(0, 1), default: 0.01 }),
  spec({ key: 'seed', flags: '--seed <n>', description: `seed of every draw (pictures, templates, flips, noise, timesteps), 0..${MAX_SEED}; random when absent, always printed and saved`, parse: optional(parseInteger(0, MAX_SEED)), default: undefined, defaultText: 'random' }),
  spec({ key: 'saveEvery', flags: '--save-every <n>', description: 'write <token>-<step>.safetensors and the resumable state every n steps (0: only at the end and on Ctrl-C)', parse: parseInteger(0, 1_000_000), default: 500 }),
  spec({ key: 'previewEvery', flags: '--preview-every <n>', description: 'generate a preview picture every n steps into <output>/previews (0: none)', parse: parseInteger(0, 1_000_000), default: 0 }),
  spec({ key: 'previewPrompt', flags: '--preview-prompt <text>', description: 'the previews\' prompt (same seed each time)', parse: optional(text), default: undefined, defaultText: "the first template with the token, e.g. 'a photo of a <token>'" }),
  spec({ key: 'output', flags: '-o, --output <dir>', description: 'folder for <token>.safetensors, checkpoints, the state and previews', parse: text, default: 'embeddings' }),
  spec({ key: 'overwrite', flags: '--overwrite', description: 'replace an existing <token>.safetensors', parse: flag, default: false }),
  spec({ key: 'resume', flags: '--resume', description: "continue the run saved in the output folder (same settings; --steps may grow)", parse: flag, default: false }),
  spec({ key: 'device', flags: '--device <name>', description: `execution provider: ${DEVICES.join(', ')}`, parse: parseChoice(DEVICES), default: 'cpu' }),
  spec({ key: 'threads', flags: '--threads <n>', description: 'CPU threads for ONNX Runtime', parse: optional(parseInteger(1, 1024)), default: undefined, defaultText: 'physical cores' }),
  spec({ key: 'offline', flags: '--offline', description: 'never touch the network: only models already in the cache', parse: flag, default: false }),
  spec({ key: 'yes', flags: '-y, --yes', description: 'download a registry model that is not installed without asking', parse: flag, default: false }),
] as const satisfies readonly TrainOptionSpec[];

/** Commander's raw values → settings, each parsed by its row; missing required flags are refused by name. */
export function trainSettings(raw: Record<string, unknown>): TrainSettings {
  const out: Record<string, unknown> = {};
  for (const o of TRAIN_OPTIONS as readonly TrainOptionSpec[]) {
    const label = o.flags.split(/[ ,]+/).find((f) => f.startsWith('--'))!;
    const value = raw[o.key];
    if (o.required && (value === undefined || value === '')) throw new UsageError(`missing ${label}: diffuse embed-train --model ID --images DIR --token NAME`);
    out[o.key] = value === undefined ? o.default : o.parse(value, label);
  }
  return out as unknown as TrainSettings;
}
