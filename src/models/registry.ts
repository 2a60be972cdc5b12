import { InputFileError, readInputFileSync } from '../input-file.js';
import { fileURLToPath } from 'node:url';
import { RegistryError } from './errors.js';
import { validateId, validateRepoId, validateRevision } from './ref.js';
import { unsafeRepoPathReason } from './safe-path.js';

/**
 * models.json: the models `diffuse` knows by name. This file is its schema: the types say what
 * an entry holds and validateRegistry() says, field by field, what is wrong with a bad one.
 */

export const TASKS = ['txt2img', 'img2img', 'inpaint', 'depth2img'] as const;
export type Task = (typeof TASKS)[number];

export const FAMILIES = ['sd1', 'sd2', 'sdxl'] as const;
export type Family = (typeof FAMILIES)[number];

export const PRECISIONS = ['fp32', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];

export const PREDICTIONS = ['epsilon', 'v_prediction', 'sample'] as const;
export type Prediction = (typeof PREDICTIONS)[number];

/** What a model entry's repo holds: diffusers' ONNX layout (run as it is), or its PyTorch layout (converted on first use). */
export const FORMATS = ['onnx', 'pytorch'] as const;
export type Format = (typeof FORMATS)[number];

/** The folders of a PyTorch entry, whatever the task: diffusers' own layout has one vae/ for both directions. */
export const PYTORCH_COMPONENTS: readonly string[] = ['text_encoder', 'tokenizer', 'unet', 'vae', 'scheduler'];
/** A PyTorch entry's files: configs, tokenizer files and the float32 safetensors diffusers loads by default (not the fp16 variants or .bin copies beside them). */
export const PYTORCH_INCLUDE: readonly string[] = ['*.json', '*.txt', 'model.safetensors', 'diffusion_pytorch_model.safetensors'];

export interface Recommended {
  /** A sampler name from src/schedulers' table. */
  sampler: string;
  /** A sigma schedule name from src/schedulers' table. */
  schedule: string;
  steps: number;
  cfg: number;
}

export interface RegistryEntry {
  id: string;
  name: string;
  family: Family;
  /** Hub repo id, org/name. */
  repo: string;
  /** Branch, tag or commit on the Hub. */
  revision: string;
  /** Subcommands this model serves; each maps to components via the registry's taskComponents (PYTORCH_COMPONENTS for a PyTorch repo). */
  tasks: Task[];
  /** Absent: onnx. */
  format?: Format;
  precision: Precision;
  prediction: Prediction;
  /** Native [width, height] in pixels. */
  resolution: [number, number];
  recommended: Recommended;
  license: { name: string; url: string };
  /** Approximate download size of each component folder, in bytes (from the Hub listing). */
  componentBytes: Record<string, number>;
  /** Optional pins: repo path → sha256 the downloaded file must have. */
  sha256?: Record<string, string>;
  notes?: string;
}

export const VAE_KINDS = ['taesd'] as const;
export type VaeKind = (typeof VAE_KINDS)[number];

/** A VAE to pull by name (`diffuse models pull taesd`, `--vae taesd`): the exact files of a Hub repo. */
export interface VaeEntry {
  id: string;
  name: string;
  kind: VaeKind;
  /** The latent space it decodes: SD 1.x/2.x's or SDXL's. */
  family: Family;
  repo: string;
  revision: string;
  /** Repo paths to download (weights in the layout src/graphs reads). */
  files: string[];
  /** Approximate download size in bytes. */
  bytes: number;
  license: { name: string; url: string };
  sha256?: Record<string, string>;
  notes?: string;
}

/** A registry entry pulled as an exact list of a Hub repo's files (a VAE, an upscaler). */
export type FileSetEntry = Pick<VaeEntry, 'id' | 'name' | 'repo' | 'revision' | 'files' | 'bytes' | 'license' | 'sha256' | 'notes'>;

/** The architecture of an upscaler graph: Real-ESRGAN's RRDBNet (x4plus, x2plus, anime_6B) or SRVGGNetCompact (general-x4v3, animevideov3). */
export const UPSCALER_KINDS = ['rrdbnet', 'srvgg'] as const;
export type UpscalerKind = (typeof UPSCALER_KINDS)[number];

/** An ONNX upscaler to pull by name (`diffuse upscale --model realesrgan-x4plus`): one .onnx file of a Hub repo. */
export interface UpscalerEntry extends FileSetEntry {
  kind: UpscalerKind;
  /** Output size / input size, as published (the graph is probed for it when it loads). */
  scale: number;
}

/**
 * What an interrogator entry is: `clip` (diffuse img2txt --clip ID), CLIP's two towers in transformers.js's layout;
 * `blip` (--blip ID), a transformers BLIP captioning folder whose model.safetensors src/graphs converts on first use.
 */
export const INTERROGATOR_PARTS = ['clip', 'blip'] as const;
export type InterrogatorPart = (typeof INTERROGATOR_PARTS)[number];

/** The files an entry of each part must list: what img2txt opens (CLIP) or converts and then opens (BLIP). */
const INTERROGATOR_FILES: Readonly<Record<InterrogatorPart, readonly string[]>> = {
  clip: ['onnx/text_model.onnx', 'onnx/vision_model.onnx'],
  blip: ['model.safetensors', 'config.json', 'preprocessor_config.json', 'vocab.txt'],
};

/** An img2txt model to pull by name: the exact files of a Hub repo. */
export interface InterrogatorEntry extends FileSetEntry {
  part: InterrogatorPart;
}

/**
 * A ControlNet to pull by name (`--control model=control_v11p_sd15_canny`): a diffusers ControlNet folder's config.json and
 * weights, which src/graphs converts on first use. `family`: the models it conditions (refused with another's before a download).
 */
export interface ControlNetEntry extends FileSetEntry {
  family: Family;
}

/**
 * A LoRA to pull by name and use as `<lora:ID:weight>` in a prompt (LCM-LoRA, SDXL-Lightning): one .safetensors file of a
 * Hub repo. `family`: the models it fits (refused with another's before a download). `recommended`: what a distillation
 * LoRA needs (its sampler, few steps, CFG 1), standing in for the model's own recommendation in a prompt that uses it.
 */
export interface LoraEntry extends FileSetEntry {
  family: Family;
  recommended?: Recommended;
}

/** The networks a preprocessor entry holds weights of (src/graphs/detector-convert.ts builds each; dwpose's are ONNX as published). */
export const PREPROCESSOR_KINDS = ['hed', 'lineart', 'lineart-anime', 'pidinet', 'openpose', 'openpose-hand', 'openpose-face', 'mlsd', 'dwpose'] as const;
export type PreprocessorKind = (typeof PREPROCESSOR_KINDS)[number];

/**
 * A ControlNet preprocessor's network to pull by name (`--control type=softedge,detector=annotators-hed`; the type's
 * default when detector= is left out): one weight file of a Hub repo (lllyasviel/Annotators), built into a graph on first use;
 * dwpose's: yzd-v/DWPose's two ONNX files, run as they are.
 */
export interface PreprocessorEntry extends FileSetEntry {
  kind: PreprocessorKind;
}

/** The weight files a ControlNet entry may list (src/graphs/controlnet-convert.ts reads any of them beside config.json). */
const CONTROLNET_WEIGHTS = /^diffusion_pytorch_model(\.fp16)?\.(safetensors|bin)$/;

export interface Registry {
  version: 1;
  /** The id used when no --model is given. */
  default: string;
  defaultReason: string;
  /** Basename globs (only `*` is special) a component's files must match to be downloaded. */
  include: string[];
  /** Component folders each subcommand needs; model_index.json at the root always comes too. */
  taskComponents: Record<Task, string[]>;
  /** Added only when the safety checker is asked for. */
  safetyComponents: string[];
  /** Fetched with any task when the repo has them (SDXL's text_encoder_2/ and tokenizer_2/). */
  optionalComponents: string[];
  models: RegistryEntry[];
  /** VAEs by name; a registry without the key has none. */
  vaes: VaeEntry[];
  /** Upscalers by name; a registry without the key has none. */
  upscalers: UpscalerEntry[];
  /** img2txt's models by name; a registry without the key has none. */
  interrogators: InterrogatorEntry[];
  /** ControlNets by name; a registry without the key has none. */
  controlnets: ControlNetEntry[];
  /** LoRAs by name; a registry without the key has none. */
  loras: LoraEntry[];
  /** ControlNet preprocessors' networks by name; a registry without the key has none. */
  preprocessors: PreprocessorEntry[];
}

const COMPONENT = /^[a-z0-9_]{1,64}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const GLOB = /^[A-Za-z0-9._*-]{1,64}$/;

type Json = Record<string, unknown>;

/** Walks one JSON value, recording every problem with its path so one run reports them all. */
class Checker {
  readonly problems: string[] = [];

  fail(path: string, message: string): void {
    this.problems.push(`${path}: ${message}`);
  }

  object(value: unknown, path: string): Json | undefined {
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Json;
    this.fail(path, 'must be an object');
    return undefined;
  }

  string(value: unknown, path: string, check?: (s: string) => string | undefined): string {
    if (typeof value !== 'string' || value.length === 0) {
      this.fail(path, 'must be a non-empty string');
      return '';
    }
    const problem = check?.(value);
    if (problem) this.fail(path, problem);
    return value;
  }

  oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(path, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
      return allowed[0]!;
    }
    return value as T;
  }

  number(value: unknown, path: string, min: number, max: number, integer: boolean): number {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
      this.fail(path, `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`);
      return min;
    }
    return value;
  }

  array(value: unknown, path: string, minLength = 1): unknown[] {
    if (!Array.isArray(value) || value.length < minLength) {
      this.fail(path, minLength > 0 ? 'must be a non-empty array' : 'must be an array');
      return [];
    }
    return value;
  }

  stringList(value: unknown, path: string, check: (s: string) => string | undefined, minLength = 1): string[] {
    const items = this.array(value, path, minLength).map((item, i) => this.string(item, `${path}[${i}]`, check));
    const seen = new Set<string>();
    items.forEach((item, i) => {
      if (seen.has(item)) this.fail(`${path}[${i}]`, `duplicate "${item}"`);
      seen.add(item);
    });
    return items;
  }

  /** Unknown keys are typos more often than extensions: report them. */
  onlyKeys(obj: Json, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) this.fail(`${path}.${key}`, `unknown field (allowed: ${allowed.join(', ')})`);
    }
  }
}

const componentName = (s: string): string | undefined => (COMPONENT.test(s) ? undefined : 'must be a folder name of a-z, 0-9, "_"');
const globPattern = (s: string): string | undefined => (GLOB.test(s) ? undefined : 'must be a basename glob of letters, digits, ".", "_", "-", "*"');
const httpsUrl = (s: string): string | undefined => (/^https:\/\/[^\s]+$/.test(s) ? undefined : 'must be an https:// URL');

const TOP_KEYS = ['$comment', 'version', 'default', 'defaultReason', 'include', 'taskComponents', 'safetyComponents', 'optionalComponents', 'models', 'vaes', 'upscalers', 'interrogators', 'controlnets', 'loras', 'preprocessors'] as const;
const VAE_KEYS = ['id', 'name', 'kind', 'family', 'repo', 'revision', 'files', 'bytes', 'license', 'sha256', 'notes'] as const;
const UPSCALER_KEYS = ['id', 'name', 'kind', 'scale', 'repo', 'revision', 'files', 'bytes', 'license', 'sha256', 'notes'] as const;
const INTERROGATOR_KEYS = ['id', 'name', 'part', 'repo', 'revision', 'files', 'bytes', 'license', 'sha256', 'notes'] as const;
const CONTROLNET_KEYS = ['id', 'name', 'family', 'repo', 'revision', 'files', 'bytes', 'license', 'sha256', 'notes'] as const;
const PREPROCESSOR_KEYS = ['id', 'name', 'kind', 'repo', 'revision', 'files', 'bytes', 'license', 'sha256', 'notes'] as const;
const LORA_KEYS = ['id', 'name', 'family', 'recommended', 'repo', 'revision', 'files', 'bytes', 'license', 'sha256', 'notes'] as const;

function checkPins(c: Checker, raw: unknown, path: string): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  const sha256: Record<string, string> = {};
  const pins = c.object(raw, path) ?? {};
  for (const [file, hash] of Object.entries(pins)) {
    const reason = unsafeRepoPathReason(file);
    if (reason) c.fail(`${path}["${file}"]`, `unsafe repo path (${reason})`);
    sha256[file] = c.string(hash, `${path}["${file}"]`, (h) => (SHA256.test(h) ? undefined : 'must be 64 lower-case hex digits'));
  }
  return sha256;
}

/** The fields every file-set entry has (VAEs, upscalers). */
function checkFileSet(c: Checker, obj: Json, path: string): FileSetEntry {
  const license = c.object(obj.license, `${path}.license`) ?? {};
  c.onlyKeys(license, `${path}.license`, ['name', 'url']);
  const entry: FileSetEntry = {
    id: c.string(obj.id, `${path}.id`, validateId),
    name: c.string(obj.name, `${path}.name`),
    repo: c.string(obj.repo, `${path}.repo`, validateRepoId),
    revision: c.string(obj.revision, `${path}.revision`, validateRevision),
    files: c.stringList(obj.files, `${path}.files`, (f) => unsafeRepoPathReason(f)),
    bytes: c.number(obj.bytes, `${path}.bytes`, 0, 1e12, true),
    license: { name: c.string(license.name, `${path}.license.name`), url: c.string(license.url, `${path}.license.url`, httpsUrl) },
  };
  const sha256 = checkPins(c, obj.sha256, `${path}.sha256`);
  if (sha256) entry.sha256 = sha256;
  if (obj.notes !== undefined) entry.notes = c.string(obj.notes, `${path}.notes`);
  return entry;
}

function checkVae(c: Checker, raw: unknown, path: string): VaeEntry | undefined {
  const obj = c.object(raw, path);
  if (!obj) return undefined;
  c.onlyKeys(obj, path, VAE_KEYS);
  return { ...checkFileSet(c, obj, path), kind: c.oneOf(obj.kind, `${path}.kind`, VAE_KINDS), family: c.oneOf(obj.family, `${path}.family`, FAMILIES) };
}

function checkUpscaler(c: Checker, raw: unknown, path: string): UpscalerEntry | undefined {
  const obj = c.object(raw, path);
  if (!obj) return undefined;
  c.onlyKeys(obj, path, UPSCALER_KEYS);
  const entry: UpscalerEntry = { ...checkFileSet(c, obj, path), kind: c.oneOf(obj.kind, `${path}.kind`, UPSCALER_KINDS), scale: c.number(obj.scale, `${path}.scale`, 1, 8, true) };
  if (entry.files.length !== 1 || !entry.files[0]!.endsWith('.onnx')) c.fail(`${path}.files`, 'must be one .onnx file');
  return entry;
}
function checkInterrogator(c: Checker, raw: unknown, path: string): InterrogatorEntry | undefined {
  const obj = c.object(raw, path);
  if (!obj) return undefined;
  c.onlyKeys(obj, path, INTERROGATOR_KEYS);
  const entry: InterrogatorEntry = { ...checkFileSet(c, obj, path), part: c.oneOf(obj.part, `${path}.part`, INTERROGATOR_PARTS) };
  for (const file of INTERROGATOR_FILES[entry.part]) if (!entry.files.includes(file)) c.fail(`${path}.files`, `must list ${file} (a ${entry.part} entry's files)`);
  return entry;
}

function checkRecommended(c: Checker, raw: unknown, path: string): Recommended {
  const rec = c.object(raw, path) ?? {};
  c.onlyKeys(rec, path, ['sampler', 'schedule', 'steps', 'cfg']);
  return {
    sampler: c.string(rec.sampler, `${path}.sampler`),
    schedule: c.string(rec.schedule, `${path}.schedule`),
    steps: c.number(rec.steps, `${path}.steps`, 1, 1000, true),
    cfg: c.number(rec.cfg, `${path}.cfg`, 0, 50, false),
  };
}

function checkPreprocessor(c: Checker, raw: unknown, path: string): PreprocessorEntry | undefined {
  const obj = c.object(raw, path);
  if (!obj) return undefined;
  c.onlyKeys(obj, path, PREPROCESSOR_KEYS);
  const entry: PreprocessorEntry = { ...checkFileSet(c, obj, path), kind: c.oneOf(obj.kind, `${path}.kind`, PREPROCESSOR_KINDS) };
  if (entry.kind === 'dwpose') {
    // type=dwpose runs the two published ONNX files from their folder, by these names.
    if (entry.files.length !== 2 || entry.files[0] !== 'yolox_l.onnx' || entry.files[1] !== 'dw-ll_ucoco_384.onnx') c.fail(`${path}.files`, 'must be yolox_l.onnx and dw-ll_ucoco_384.onnx (yzd-v/DWPose\'s)');
  } else if (entry.files.length !== 1 || !/\.(pth|safetensors)$/.test(entry.files[0]!)) c.fail(`${path}.files`, 'must be one .pth or .safetensors file');
  return entry;
}

function checkLora(c: Checker, raw: unknown, path: string): LoraEntry | undefined {
  const obj = c.object(raw, path);
  if (!obj) return undefined;
  c.onlyKeys(obj, path, LORA_KEYS);
  const entry: LoraEntry = { ...checkFileSet(c, obj, path), family: c.oneOf(obj.family, `${path}.family`, FAMILIES) };
  if (obj.recommended !== undefined) entry.recommended = checkRecommended(c, obj.recommended, `${path}.recommended`);
  if (entry.files.length !== 1 || !entry.files[0]!.endsWith('.safetensors')) c.fail(`${path}.files`, 'must be one .safetensors file');
  return entry;
}

function checkControlNet(c: Checker, raw: unknown, path: string): ControlNetEntry | undefined {
  const obj = c.object(raw, path);
  if (!obj) return undefined;
  c.onlyKeys(obj, path, CONTROLNET_KEYS);
  const entry: ControlNetEntry = { ...checkFileSet(c, obj, path), family: c.oneOf(obj.family, `${path}.family`, FAMILIES) };
  const weights = entry.files.filter((f) => CONTROLNET_WEIGHTS.test(f));
  if (!entry.files.includes('config.json') || weights.length !== 1) c.fail(`${path}.files`, 'must list config.json and one diffusion_pytorch_model[.fp16].safetensors or .bin (a diffusers ControlNet folder)');
  return entry;
}
const ENTRY_KEYS = ['id', 'name', 'family', 'repo', 'revision', 'format', 'tasks', 'precision', 'prediction', 'resolution', 'recommended', 'license', 'componentBytes', 'sha256', 'notes'] as const;

function checkEntry(c: Checker, raw: unknown, path: string, taskComponents: Record<Task, string[]>, otherComponents: string[]): RegistryEntry | undefined {
  const obj = c.object(raw, path);
  if (!obj) return undefined;
  c.onlyKeys(obj, path, ENTRY_KEYS);
  const tasks = c.stringList(obj.tasks, `${path}.tasks`, (s) => ((TASKS as readonly string[]).includes(s) ? undefined : `must be one of ${TASKS.join(', ')}`)) as Task[];

  const resolution = c.array(obj.resolution, `${path}.resolution`);
  if (resolution.length !== 2) c.fail(`${path}.resolution`, 'must be [width, height]');
  const [width, height] = [0, 1].map((i) => {
    const size = c.number(resolution[i], `${path}.resolution[${i}]`, 64, 4096, true);
    if (size % 8 !== 0) c.fail(`${path}.resolution[${i}]`, 'must be a multiple of 8 (the VAE factor)');
    return size;
  }) as [number, number];

  const license = c.object(obj.license, `${path}.license`) ?? {};
  c.onlyKeys(license, `${path}.license`, ['name', 'url']);

  const bytes = c.object(obj.componentBytes, `${path}.componentBytes`) ?? {};
  const componentBytes: Record<string, number> = {};
  for (const [component, size] of Object.entries(bytes)) {
    const problem = componentName(component);
    if (problem) c.fail(`${path}.componentBytes.${component}`, problem);
    componentBytes[component] = c.number(size, `${path}.componentBytes.${component}`, 0, 1e12, true);
  }
  const format = obj.format === undefined ? undefined : c.oneOf(obj.format, `${path}.format`, FORMATS);
  const componentsOf = (task: Task): readonly string[] => (format === 'pytorch' ? PYTORCH_COMPONENTS : (taskComponents[task] ?? []));
  // Every component a declared task pulls needs a size, so `models list`/`pull` can tell the user
  // how much is coming before it comes.
  for (const task of tasks) {
    for (const component of componentsOf(task)) {
      if (!(component in componentBytes)) c.fail(`${path}.componentBytes`, `missing "${component}" (needed by ${task})`);
    }
  }
  for (const component of Object.keys(componentBytes)) {
    const known = tasks.some((t) => componentsOf(t).includes(component)) || otherComponents.includes(component);
    if (!known) c.fail(`${path}.componentBytes.${component}`, 'is not a component of any of the entry\'s tasks, an optional one, nor of the safety checker');
  }

  const sha256 = checkPins(c, obj.sha256, `${path}.sha256`);

  const entry: RegistryEntry = {
    id: c.string(obj.id, `${path}.id`, validateId),
    name: c.string(obj.name, `${path}.name`),
    family: c.oneOf(obj.family, `${path}.family`, FAMILIES),
    repo: c.string(obj.repo, `${path}.repo`, validateRepoId),
    revision: c.string(obj.revision, `${path}.revision`, validateRevision),
    ...(format ? { format } : {}),
    tasks,
    precision: c.oneOf(obj.precision, `${path}.precision`, PRECISIONS),
    prediction: c.oneOf(obj.prediction, `${path}.prediction`, PREDICTIONS),
    resolution: [width, height],
    recommended: checkRecommended(c, obj.recommended, `${path}.recommended`),
    license: {
      name: c.string(license.name, `${path}.license.name`),
      url: c.string(license.url, `${path}.license.url`, httpsUrl),
    },
    componentBytes,
  };
  if (sha256) entry.sha256 = sha256;
  if (obj.notes !== undefined) entry.notes = c.string(obj.notes, `${path}.notes`);
  return entry;
}

/** The registry in `raw`, or a RegistryError listing every problem found (one per line). */
export function validateRegistry(raw: unknown, source = 'models.json'): Registry {
  const c = new Checker();
  const top = c.object(raw, '$') ?? {};
  c.onlyKeys(top, '$', TOP_KEYS);
  if (top.version !== 1) c.fail('$.version', 'must be 1');

  const tc = c.object(top.taskComponents, '$.taskComponents') ?? {};
  c.onlyKeys(tc, '$.taskComponents', TASKS);
  const taskComponents = {} as Record<Task, string[]>;
  for (const task of TASKS) taskComponents[task] = c.stringList(tc[task], `$.taskComponents.${task}`, componentName);
  const safetyComponents = c.stringList(top.safetyComponents, '$.safetyComponents', componentName, 0);
  const optionalComponents = top.optionalComponents === undefined ? [] : c.stringList(top.optionalComponents, '$.optionalComponents', componentName, 0);

  const models: RegistryEntry[] = [];
  const ids = new Set<string>();
  c.array(top.models, '$.models').forEach((raw, i) => {
    const entry = checkEntry(c, raw, `$.models[${i}]`, taskComponents, [...safetyComponents, ...optionalComponents]);
    if (!entry) return;
    if (ids.has(entry.id)) c.fail(`$.models[${i}].id`, `duplicate id "${entry.id}"`);
    ids.add(entry.id);
    models.push(entry);
  });

  // the optional lists of named file sets: each id unique across the whole registry
  const optionalList = <T extends FileSetEntry>(key: 'vaes' | 'upscalers' | 'interrogators' | 'controlnets' | 'loras' | 'preprocessors', check: (c: Checker, raw: unknown, path: string) => T | undefined): T[] => {
    const out: T[] = [];
    if (top[key] === undefined) return out;
    c.array(top[key], `$.${key}`, 0).forEach((raw, i) => {
      const entry = check(c, raw, `$.${key}[${i}]`);
      if (!entry) return;
      if (ids.has(entry.id)) c.fail(`$.${key}[${i}].id`, `duplicate id "${entry.id}"`);
      ids.add(entry.id);
      out.push(entry);
    });
    return out;
  };
  const vaes = optionalList('vaes', checkVae);
  const upscalers = optionalList('upscalers', checkUpscaler);
  const interrogators = optionalList('interrogators', checkInterrogator);
  const controlnets = optionalList('controlnets', checkControlNet);
  const loras = optionalList('loras', checkLora);
  const preprocessors = optionalList('preprocessors', checkPreprocessor);

  const def = c.string(top.default, '$.default', validateId);
  if (def && !models.some((m) => m.id === def)) c.fail('$.default', `"${def}" is not the id of any model`);
  const registry: Registry = {
    version: 1,
    default: def,
    defaultReason: c.string(top.defaultReason, '$.defaultReason'),
    include: c.stringList(top.include, '$.include', globPattern),
    taskComponents,
    safetyComponents,
    optionalComponents,
    models,
    vaes,
    upscalers,
    interrogators,
    controlnets,
    loras,
    preprocessors,
  };
  if (c.problems.length > 0) {
    throw new RegistryError(`${source} is invalid:\n  ${c.problems.join('\n  ')}`);
  }
  return registry;
}

const DEFAULT_PATH = fileURLToPath(new URL('../../../models.json', import.meta.url));
/** Read once per file (a test or a library user may point DIFFUSE_REGISTRY elsewhere later). */
const cached = new Map<string, Registry>();
/** A registry lists a few dozen models; a file this big is not one. */
const MAX_REGISTRY_BYTES = 16 * 2 ** 20;

/** models.json at the package root, or $DIFFUSE_REGISTRY (a team's own list), read once; or the file at `path`. */
export function loadRegistry(path?: string): Registry {
  const file = path ?? (process.env.DIFFUSE_REGISTRY || DEFAULT_PATH);
  const known = path === undefined ? cached.get(file) : undefined;
  if (known) return known;
  let raw: unknown;
  try {
    raw = JSON.parse(readInputFileSync(file, { label: 'model registry', maxBytes: MAX_REGISTRY_BYTES, exitCode: 1 }).toString('utf8'));
  } catch (err) {
    const reason = err instanceof InputFileError ? err.reason : (err as Error).message;
    throw new RegistryError(`cannot read the model registry ${file}: ${reason}`, 1, { cause: err });
  }
  const registry = validateRegistry(raw, file);
  if (path === undefined) cached.set(file, registry);
  return registry;
}

export function findEntry(registry: Registry, id: string): RegistryEntry | undefined {
  return registry.models.find((m) => m.id === id);
}

export function findVae(registry: Registry, id: string): VaeEntry | undefined {
  return registry.vaes.find((v) => v.id === id);
}

export function findUpscaler(registry: Registry, id: string): UpscalerEntry | undefined {
  return registry.upscalers.find((u) => u.id === id);
}

export function findInterrogator(registry: Registry, id: string): InterrogatorEntry | undefined {
  return registry.interrogators.find((m) => m.id === id);
}

export function findControlNet(registry: Registry, id: string): ControlNetEntry | undefined {
  return registry.controlnets.find((m) => m.id === id);
}

export function findLora(registry: Registry, id: string): LoraEntry | undefined {
  return registry.loras.find((m) => m.id === id);
}

/** The VAE, upscaler, interrogator model, ControlNet or LoRA of this id: entries pulled as an exact list of files. */
export function findPreprocessor(registry: Registry, id: string): PreprocessorEntry | undefined {
  return registry.preprocessors.find((m) => m.id === id);
}

export function findFileSet(registry: Registry, id: string): FileSetEntry | undefined {
  return findVae(registry, id) ?? findUpscaler(registry, id) ?? findInterrogator(registry, id) ?? findControlNet(registry, id) ?? findLora(registry, id) ?? findPreprocessor(registry, id);
}

/** How a file-set entry of this id is used instead of --model ("--vae taesd"), or undefined for a model or unknown id. */
export function fileSetUse(registry: Registry, id: string): string | undefined {
  if (findVae(registry, id)) return `a VAE; pass it as --vae ${id}`;
  if (findUpscaler(registry, id)) return `an upscaler; pass it as --hires-upscaler ${id} or to diffuse upscale --model`;
  const interrogator = findInterrogator(registry, id);
  if (interrogator) return `an img2txt model; pass it to diffuse img2txt --${interrogator.part} ${id}`;
  if (findControlNet(registry, id)) return `a ControlNet; pass it as --control type=…,image=…,model=${id}`;
  if (findLora(registry, id)) return `a LoRA; use it in the prompt as <lora:${id}:1>`;
  if (findPreprocessor(registry, id)) return `a ControlNet preprocessor's network; pass it as --control type=…,image=…,model=…,detector=${id}`;
  return undefined;
}

/** Every id the registry knows: models, VAEs, upscalers, interrogator models, ControlNets, LoRAs, preprocessors. */
export function registryIds(registry: Registry): string[] {
  return [...registry.models, ...registry.vaes, ...registry.upscalers, ...registry.interrogators, ...registry.controlnets, ...registry.loras, ...registry.preprocessors].map((e) => e.id);
}

export interface ComponentOptions {
  task: Task;
  safetyChecker?: boolean;
  /** A PyTorch repo (a registry entry of format pytorch): its folders whatever the task, no safety checker (diffuse runs only its ONNX export). */
  pytorch?: boolean;
}

/** The component folders to fetch for a task (registry entry or any diffusers ONNX repo). */
export function componentsFor(registry: Registry, options: ComponentOptions): string[] {
  if (options.pytorch) return [...PYTORCH_COMPONENTS];
  const list = [...registry.taskComponents[options.task]];
  if (options.safetyChecker) list.push(...registry.safetyComponents);
  return list;
}

/** Approximate bytes `pull` moves for this entry and task, from the registry's sizes (optional components the entry lists included). */
export function approxDownloadBytes(registry: Registry, entry: RegistryEntry, options: ComponentOptions): number {
  return [...componentsFor(registry, { ...options, pytorch: entry.format === 'pytorch' }), ...registry.optionalComponents].reduce((sum, c) => sum + (entry.componentBytes[c] ?? 0), 0);
}

/** `*` matches any run of characters within a basename; everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}
