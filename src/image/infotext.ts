// AUTOMATIC1111's "parameters" infotext, the de-facto interchange format for generation settings
// (A1111, Forge, SD.Next, Civitai and most PNG-info readers parse it).
//
//   <prompt, possibly several lines>
//   Negative prompt: <negative, possibly several lines>      (only when non-empty)
//   Steps: 20, Sampler: Euler a, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x512, ...
//
// Writing follows modules/processing.py create_infotext (key order, `quote`), reading follows
// modules/infotext_utils.py parse_generation_parameters (its regex, line handling and unquoting), so text
// we write reads back the same in A1111 and text A1111 writes reads the same here. Python's Unicode
// semantics are reproduced: `\w` is Unicode letters/numbers/underscore and `str.strip()` whitespace is
// Python's set, not JavaScript's.
//
// What the format itself cannot carry (A1111 loses it too):
//   * whitespace at the start or end of any prompt line, and blank lines at the start of the prompt;
//   * a prompt line that starts with "Negative prompt:" (everything from there on reads as the negative);
//   * a parameters line with fewer than 3 "key: value" pairs (it reads as part of the prompt).

import { pythonFloat } from './python-float.js';
import type { ControlRecord, HiresRecord, ImageMetadata } from './image-metadata.js';
import { VERSION } from '../version.js';
import { PY_SPACE_CLASS, PY_WORD_CLASS, paramMatches, pyStrip } from './infotext-params.js';

export interface GenerationParameters {
  prompt: string;
  /**
   * Number fields whose text is not Python's repr of their value (A1111's UI writes whole-number
   * floats as ints, `CFG scale: 7`; its API and diffuse write `7.0`), kept so a parsed infotext is
   * written back as it was read.
   */
  spelled?: Partial<Record<ScalarField, string>>;
  /** '' when absent. */
  negativePrompt: string;
  steps?: number;
  sampler?: string;
  /** "Karras", "Automatic", ...; A1111 reads a missing value as "Automatic". */
  scheduleType?: string;
  cfgScale?: number;
  imageCfgScale?: number;
  seed?: number;
  faceRestoration?: string;
  /** From "Size: WxH". */
  width?: number;
  height?: number;
  modelHash?: string;
  model?: string;
  vaeHash?: string;
  vae?: string;
  variationSeed?: number;
  variationSeedStrength?: number;
  denoisingStrength?: number;
  conditionalMaskWeight?: number;
  /** A1111 reads a missing value as 1. */
  clipSkip?: number;
  /** Eta noise seed delta. */
  ensd?: number;
  /** "CPU" or "NV"; A1111 reads a missing value as "GPU". */
  rng?: string;
  version?: string;
  /**
   * Every other key, value as text (unquoted), in file order: "Hires upscale", "Lora hashes", "Seed resize from", ...
   * Also holds a known key whose value did not parse as its type (e.g. "Steps: many"), so nothing is lost.
   */
  extra: Record<string, string>;
}

type ScalarField = Exclude<keyof GenerationParameters, 'prompt' | 'negativePrompt' | 'width' | 'height' | 'extra' | 'spelled'>;
type Kind = 'int' | 'number' | 'string';

const TYPED: ReadonlyMap<string, readonly [ScalarField, Kind]> = new Map<string, readonly [ScalarField, Kind]>([
  ['Steps', ['steps', 'int']],
  ['Sampler', ['sampler', 'string']],
  ['Schedule type', ['scheduleType', 'string']],
  ['CFG scale', ['cfgScale', 'number']],
  ['Image CFG scale', ['imageCfgScale', 'number']],
  ['Seed', ['seed', 'int']],
  ['Face restoration', ['faceRestoration', 'string']],
  ['Model hash', ['modelHash', 'string']],
  ['Model', ['model', 'string']],
  ['VAE hash', ['vaeHash', 'string']],
  ['VAE', ['vae', 'string']],
  ['Variation seed', ['variationSeed', 'int']],
  ['Variation seed strength', ['variationSeedStrength', 'number']],
  ['Denoising strength', ['denoisingStrength', 'number']],
  ['Conditional mask weight', ['conditionalMaskWeight', 'number']],
  ['Clip skip', ['clipSkip', 'int']],
  ['ENSD', ['ensd', 'int']],
  ['RNG', ['rng', 'string']],
  ['Version', ['version', 'string']],
]);

// create_infotext's dict order. Keys A1111 inserts at fixed places come first, `**p.extra_generation_params`
// (our `extra`, in insertion order) goes between them and the trailing Version/User.
const LEADING_KEYS = [
  'Steps', 'Sampler', 'Schedule type', 'CFG scale', 'Image CFG scale', 'Seed', 'Face restoration', 'Size',
  'Model hash', 'Model', 'FP8 weight', 'Cache FP16 weight for LoRA', 'VAE hash', 'VAE', 'Variation seed',
  'Variation seed strength', 'Seed resize from', 'Denoising strength', 'Conditional mask weight', 'Clip skip',
  'ENSD', 'Token merging ratio', 'Token merging ratio hr', 'Init image hash', 'RNG', 'Tiling',
];
const TRAILING_KEYS = ['Version', 'User'];

const NEGATIVE_PREFIX = 'Negative prompt:';
const KEY_RE = new RegExp(`^${PY_WORD_CLASS}[${PY_WORD_CLASS.slice(1, -1)} \\-/]+$`, 'u');
const EDGE_SPACE_RE = new RegExp(`^${PY_SPACE_CLASS}|${PY_SPACE_CLASS}$`, 'u');
const INT_RE = /^[+-]?\d+$/;
const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const SIZE_RE = /^(\d+)x(\d+)$/;


/**
 * A1111's `quote`: JSON-quote a value containing ',', ':' or a newline. Also quoted here, because A1111 would
 * otherwise lose them on reading: empty values, values starting with '"', values with leading or trailing
 * whitespace. A1111 reads all of these back correctly.
 */
function quote(value: string): string {
  const needs = /[,:\n]/.test(value) || value === '' || value.startsWith('"') || EDGE_SPACE_RE.test(value);
  // JSON.stringify escapes exactly what Python's json.dumps(ensure_ascii=False) does for well-formed strings.
  return needs ? JSON.stringify(value) : value;
}

function unquote(raw: string): string {
  if (!(raw.startsWith('"') && raw.endsWith('"'))) return raw;
  try {
    const parsed: unknown = JSON.parse(raw);
    return typeof parsed === 'string' ? parsed : raw;
  } catch {
    return raw;
  }
}

function formatScalar(key: string, value: string | number, kind: Kind): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || (kind === 'int' && !Number.isInteger(value))) {
      throw new RangeError(`infotext "${key}" must be ${kind === 'int' ? 'an integer' : 'a finite number'}, got ${value}`);
    }
  }
  return kind === 'number' && typeof value === 'number' ? pythonFloat(value) : String(value);
}

/** The infotext A1111 would write for these parameters (create_infotext). */
export function formatInfotext(params: GenerationParameters): string {
  const values = new Map<string, string>();
  for (const [key, [field, kind]] of TYPED) {
    const v = params[field];
    const spelled = params.spelled?.[field];
    if (v !== undefined) values.set(key, spelled !== undefined && Number(spelled) === v ? spelled : formatScalar(key, v, kind));
  }
  if (params.width !== undefined || params.height !== undefined) {
    if (!Number.isInteger(params.width) || !Number.isInteger(params.height)) {
      throw new RangeError('infotext Size needs both width and height as integers');
    }
    values.set('Size', `${params.width}x${params.height}`);
  }
  for (const [key, v] of Object.entries(params.extra)) {
    if (!KEY_RE.test(key)) throw new RangeError(`infotext key ${JSON.stringify(key)} cannot be read back (A1111 key syntax)`);
    if (!values.has(key)) values.set(key, v);
  }
  const order = [
    ...LEADING_KEYS,
    ...[...values.keys()].filter((k) => !LEADING_KEYS.includes(k) && !TRAILING_KEYS.includes(k)),
    ...TRAILING_KEYS,
  ];
  const line = order
    .filter((k) => values.has(k))
    // A1111 writes a bare key when its value equals the key.
    .map((k) => (values.get(k) === k ? k : `${k}: ${quote(values.get(k)!)}`))
    .join(', ');
  const negative = params.negativePrompt ? `\n${NEGATIVE_PREFIX} ${params.negativePrompt}` : '';
  return pyStrip(`${params.prompt}${negative}\n${line}`);
}

function assign(params: GenerationParameters, key: string, value: string): void {
  if (key === 'Size') {
    const m = SIZE_RE.exec(value);
    if (m) {
      params.width = Number(m[1]);
      params.height = Number(m[2]);
      return;
    }
  }
  const typed = TYPED.get(key);
  if (typed) {
    const [field, kind] = typed;
    if (kind === 'string') {
      (params as unknown as Record<string, string>)[field] = value;
      return;
    }
    if ((kind === 'int' ? INT_RE : NUMBER_RE).test(value)) {
      const n = Number(value);
      (params as unknown as Record<string, number>)[field] = n;
      if (kind === 'number' && pythonFloat(n) !== value) (params.spelled ??= {})[field] = value;
      return;
    }
  }
  params.extra[key] = value;
}

/** Parse an infotext as A1111's parse_generation_parameters does, into typed fields plus `extra`. */
export function parseInfotext(text: string): GenerationParameters {
  const lines = pyStrip(text).split('\n');
  let paramLine = lines.pop()!;
  if (paramMatches(paramLine).length < 3) {
    lines.push(paramLine);
    paramLine = '';
  }
  let prompt = '';
  let negativePrompt = '';
  let inNegative = false;
  for (const raw of lines) {
    let line = pyStrip(raw);
    if (line.startsWith(NEGATIVE_PREFIX)) {
      inNegative = true;
      line = pyStrip(line.slice(NEGATIVE_PREFIX.length));
    }
    if (inNegative) negativePrompt += (negativePrompt === '' ? '' : '\n') + line;
    else prompt += (prompt === '' ? '' : '\n') + line;
  }
  const params: GenerationParameters = { prompt, negativePrompt, extra: {} };
  for (const [key, raw] of paramMatches(paramLine)) {
    // A1111 indexes raw[0] and drops the key with an error when the value is empty.
    if (raw === '') continue;
    assign(params, key, unquote(raw));
  }
  return params;
}

// ---- diffuse's metadata in A1111's vocabulary, and back ------------------------------------------
// The one place that knows the labels: A1111's own where it has them ("Denoising strength", "Clip
// skip", "TI hashes", "Mask blur", "Inpaint area", ...), ours in the same style where it has none.

/** The parameters A1111 would read for an image made with these settings. */
export function metadataParameters(m: ImageMetadata): GenerationParameters {
  // Insertion order is the written order for keys A1111 does not place itself.
  const extra: Record<string, string> = {};
  if (m.clipSkip > 1) extra['Clip skip'] = String(m.clipSkip);
  const used = Object.entries(m.embeddings);
  if (used.length) extra['TI hashes'] = used.map(([name, hash]) => `${name}: ${hash}`).join(', ');
  // A1111 drops ':' and ',' from the names so the list stays parseable.
  const loras = Object.entries(m.loras ?? {});
  if (loras.length) extra['Lora hashes'] = loras.map(([name, hash]) => `${name.replace(/[:,]/g, '')}: ${hash}`).join(', ');
  if (m.promptWeighting !== 'a1111') extra['Prompt weighting'] = m.promptWeighting;
  if (m.quantization) extra.Quantization = `${m.quantization.mode} (${m.quantization.format})`;
  // A machine's property, not a setting: recorded for the reader, not restored by --from.
  if (m.provider) extra.Provider = m.provider;
  if (m.sdeNoise !== 'brownian') extra['SDE noise'] = m.sdeNoise;
  if (m.deepCache !== undefined) extra['Deep cache'] = String(m.deepCache);
  if (m.tokenMerging !== undefined) {
    extra['Token merging ratio'] = pythonFloat(m.tokenMerging);
    // A1111's hires pass merges at its own ratio, which defaults to the first pass's; ours is the one the UNet was edited for.
    if (m.hires) extra['Token merging ratio hr'] = pythonFloat(m.tokenMerging);
  }
  if (m.sigmaTable) extra['Sigma table'] = SIGMA_TABLE_LABELS[m.sigmaTable];
  if (m.init?.hash) extra['Init image hash'] = m.init.hash;
  if (m.initialLatents) extra['Init latents hash'] = m.initialLatents.hash;
  if (m.init?.resizeMode) extra['Resize mode'] = m.init.resizeMode;
  if (m.outpaint) {
    const e = m.outpaint.extend;
    extra.Outpaint = `left=${e.left},right=${e.right},top=${e.top},bottom=${e.bottom}`;
    extra['Outpaint fill'] = m.outpaint.fill;
    extra.Overlap = String(m.outpaint.overlap);
    extra['Mask blur'] = String(m.outpaint.blur);
  }
  if (m.init?.strengthMode === 'a1111') extra['Strength mode'] = 'a1111';
  if (m.depthMap === 'estimated') extra['Depth map'] = 'estimated';
  else if (m.depthMap) extra['Depth map hash'] = m.depthMap.hash;
  if (m.mask) {
    if (m.mask.fromAlpha) extra['Mask source'] = 'alpha';
    else if (m.mask.hash) extra['Mask hash'] = m.mask.hash;
    extra['Mask blur'] = String(m.mask.blur);
    if (m.mask.invert) extra['Mask mode'] = 'Inpaint not masked';
    extra['Masked content'] = m.mask.content;
    extra['Inpaint area'] = m.mask.area === 'masked' ? 'Only masked' : 'Whole picture';
    if (m.mask.area === 'masked' && m.mask.padding !== undefined) extra['Masked area padding'] = String(m.mask.padding);
  }
  // A1111's refiner script: the checkpoint's short title ("name [hash]") and the switch.
  if (m.refiner) {
    extra.Refiner = `${m.refiner.name} [${m.refiner.hash}]`;
    extra['Refiner switch at'] = pythonFloat(m.refiner.switchAt);
  }
  if (m.sdUpscale) {
    extra['SD upscale overlap'] = String(m.sdUpscale.overlap);
    extra['SD upscale upscaler'] = m.sdUpscale.upscaler;
  }
  m.control?.forEach((c, i) => {
    extra[`ControlNet ${i}`] = controlText(c);
  });
  if (m.hires) Object.assign(extra, hiresParameters(m.hires));
  if (m.safetyCheck) extra['Safety checker'] = m.safetyCheck.nsfw ? `flagged (${m.safetyCheck.action})` : 'passed';
  if (m.watermark) extra.Watermark = m.watermark;
  if (m.tinyVae?.encode) extra['VAE Encoder'] = 'TAESD';
  if (m.tinyVae?.decode) extra['VAE Decoder'] = 'TAESD';
  if (m.eta !== undefined) extra.Eta = pythonFloat(m.eta);
  if (m.cfgRescale > 0) extra['CFG Rescale'] = pythonFloat(m.cfgRescale);
  if (m.seedMode === 'diffusers' && m.batchSize > 1) extra['Seed mode'] = 'diffusers';
  return {
    prompt: m.prompt,
    negativePrompt: m.negativePrompt,
    steps: m.steps,
    sampler: m.sampler,
    scheduleType: m.scheduleType,
    cfgScale: m.cfgScale,
    seed: m.seed,
    width: m.width,
    height: m.height,
    modelHash: m.modelHash,
    model: m.model,
    ...(m.vae ? { vae: m.vae.name, vaeHash: m.vae.hash } : {}),
    ...(m.init ? { denoisingStrength: m.init.strength } : m.hires ? { denoisingStrength: m.hires.strength } : {}),
    ...(m.variationSeed !== undefined ? { variationSeed: m.variationSeed, variationSeedStrength: m.variationStrength! } : {}),
    ...(m.ensd !== undefined ? { ensd: m.ensd } : {}),
    rng: m.rng === 'philox' ? 'NV' : 'CPU',
    version: `diffuse ${VERSION}`,
    extra,
  };
}

/** A1111 1.10's hires keys in the order its txt2img init() adds them ("Hires CFG Scale" is Forge's). */
function hiresParameters(h: HiresRecord): Record<string, string> {
  const out: Record<string, string> = {};
  if (h.sampler !== undefined) out['Hires sampler'] = h.sampler;
  if (h.prompt !== undefined) out['Hires prompt'] = h.prompt;
  if (h.negativePrompt !== undefined) out['Hires negative prompt'] = h.negativePrompt;
  if (h.scheduleType !== undefined) out['Hires schedule type'] = h.scheduleType;
  if (h.scale !== undefined) out['Hires upscale'] = pythonFloat(h.scale);
  if (h.resize) out['Hires resize'] = `${h.resize.width}x${h.resize.height}`;
  if (h.steps !== undefined) out['Hires steps'] = String(h.steps);
  out['Hires upscaler'] = h.upscaler;
  if (h.cfgScale !== undefined) out['Hires CFG Scale'] = pythonFloat(h.cfgScale);
  return out;
}

/** The hires fix an infotext records: "Hires upscale" or "Hires resize" turn it on; "Denoising strength" is its strength. */
function readHires(p: GenerationParameters): RecordedHires | undefined {
  const e = p.extra;
  const scale = Number(e['Hires upscale']);
  const resize = /^(\d+)x(\d+)$/.exec((e['Hires resize'] ?? '').trim());
  if (!(e['Hires upscale'] !== undefined && Number.isFinite(scale)) && !resize) return undefined;
  const steps = Number(e['Hires steps']);
  const cfg = Number(e['Hires CFG Scale']);
  return {
    ...(resize ? { resize: { width: Number(resize[1]), height: Number(resize[2]) } } : { scale }),
    ...(e['Hires upscaler'] !== undefined ? { upscaler: e['Hires upscaler'] } : {}),
    ...(e['Hires steps'] !== undefined && Number.isInteger(steps) ? { steps } : {}),
    ...(p.denoisingStrength !== undefined ? { strength: p.denoisingStrength } : {}),
    ...(e['Hires prompt'] !== undefined ? { prompt: e['Hires prompt'] } : {}),
    ...(e['Hires negative prompt'] !== undefined ? { negativePrompt: e['Hires negative prompt'] } : {}),
    ...(e['Hires sampler'] !== undefined ? { sampler: e['Hires sampler'] } : {}),
    ...(e['Hires schedule type'] !== undefined ? { scheduleType: e['Hires schedule type'] } : {}),
    ...(e['Hires CFG Scale'] !== undefined && Number.isFinite(cfg) ? { cfgScale: cfg } : {}),
  };
}

/** A recorded hires fix: its fields as written, the upscaler by A1111's name. */
export type RecordedHires = Omit<HiresRecord, 'upscaler' | 'strength'> & { upscaler?: string; strength?: number };

const SIGMA_TABLE_LABELS = { diffusers: 'diffusers', a1111: 'A1111', comfyui: 'ComfyUI' } as const;

const CONTROL_RESIZE_LABELS = { 'just-resize': 'Just Resize', 'crop-and-resize': 'Crop and Resize', 'resize-and-fill': 'Resize and Fill' } as const;
// A1111's control modes: guess mode is its "ControlNet is more important" (the prompt's half alone gets the residuals).
const CONTROL_MODE_GUESS = 'ControlNet is more important';

/** sd-webui-controlnet's unit text: "Module: canny, Model: name [hash], Weight: 0.8, …". */
function controlText(c: ControlRecord): string {
  const fields: [string, string | number][] = [
    ['Module', c.module],
    ['Model', `${c.model} [${c.hash}]`],
    ['Weight', c.weight],
    ['Resize Mode', CONTROL_RESIZE_LABELS[c.resizeMode]],
    ['Low Vram', 'False'],
    // An integer, written as the extension writes its int field (Processor Res: 512).
    ...(c.processorRes !== undefined ? [['Processor Res', String(c.processorRes)] as [string, string]] : []),
    ...(c.thresholdA !== undefined ? [['Threshold A', c.thresholdA] as [string, number]] : []),
    ...(c.thresholdB !== undefined ? [['Threshold B', c.thresholdB] as [string, number]] : []),
    ['Guidance Start', c.start],
    ['Guidance End', c.end],
    ['Pixel Perfect', c.pixelPerfect ? 'True' : 'False'],
    ['Control Mode', c.guess ? CONTROL_MODE_GUESS : 'Balanced'],
  ];
  // sd-webui-controlnet's unit fields are floats, written with Python's repr (Weight: 1.0, Guidance Start: 0.0).
  return fields.map(([k, v]) => `${k}: ${typeof v === 'number' ? pythonFloat(v) : v}`).join(', ');
}

/** A "ControlNet N" text read back: the fields --control takes again (the picture and folder are not recorded). */
export interface RecordedControl {
  module: string;
  model: string;
  weight?: number;
  start?: number;
  end?: number;
  guess: boolean;
  resize?: keyof typeof CONTROL_RESIZE_LABELS;
  processorRes?: number;
  /** "Pixel Perfect: True": the extension computed the resolution it used from the picture and the painted size. */
  pixelPerfect?: boolean;
  thresholdA?: number;
  thresholdB?: number;
}

function readControlText(text: string): RecordedControl {
  const fields = new Map<string, string>();
  // "Model: name [hash]" may itself hold commas only inside brackets; split on ", Key: ".
  for (const m of text.matchAll(/(?:^|, )([A-Z][\w ]*?): (.*?)(?=, [A-Z][\w ]*?: |$)/g)) fields.set(m[1]!, m[2]!);
  const num = (key: string) => {
    const v = Number(fields.get(key));
    return fields.has(key) && Number.isFinite(v) ? v : undefined;
  };
  const resize = (Object.keys(CONTROL_RESIZE_LABELS) as (keyof typeof CONTROL_RESIZE_LABELS)[]).find((k) => CONTROL_RESIZE_LABELS[k] === fields.get('Resize Mode'));
  const out: RecordedControl = { module: fields.get('Module') ?? 'none', model: fields.get('Model') ?? '', guess: fields.get('Control Mode') === CONTROL_MODE_GUESS };
  for (const [key, label] of [['weight', 'Weight'], ['processorRes', 'Processor Res'], ['start', 'Guidance Start'], ['end', 'Guidance End'], ['thresholdA', 'Threshold A'], ['thresholdB', 'Threshold B']] as const) {
    const v = num(label);
    if (v !== undefined) out[key] = v;
  }
  if (resize) out.resize = resize;
  if (fields.get('Pixel Perfect') === 'True') out.pixelPerfect = true;
  return out;
}

/** An image's metadata as its PNG `parameters` chunk. */
export function metadataInfotext(m: ImageMetadata): string {
  return formatInfotext(metadataParameters(m));
}

/** What an infotext records that a run can take again, in diffuse's vocabulary (for --from). */
export interface RecordedSettings {
  prompt: string;
  negativePrompt: string;
  steps?: number;
  cfgScale?: number;
  seed?: number;
  width?: number;
  height?: number;
  /** As written: an A1111 display name or one of ours. */
  sampler?: string;
  scheduleType?: string;
  variation?: { seed?: number; strength?: number };
  eta?: string;
  cfgRescale?: string;
  seedMode?: string;
  quantization?: { mode: string; format?: string };
  sdeNoise?: string;
  sigmaTable?: 'diffusers' | 'a1111' | 'comfyui';
  /** 'sdxl' or text=… as the image records it. */
  watermark?: string;
  /** The safety checker ran; what replaced a flagged image (black, blur). */
  safetyCheck?: { nsfw: boolean; action?: string };
  ensd?: number;
  clipSkip?: number;
  promptWeighting?: string;
  deepCache?: number;
  tokenMerging?: number;
  /** A1111's "RNG": CPU, NV, or GPU (its default when absent, CUDA's generator). */
  rng: 'CPU' | 'NV' | 'GPU' | string;
  model?: { name?: string; hash?: string };
  vae?: { name?: string; hash?: string };
  /** A1111's "Lora hashes": the name each LoRA was called by → its short hash. */
  loraHashes?: Record<string, string>;
  /** A1111's "VAE Decoder": "TAESD" or "Full". */
  vaeDecoder?: string;
  /** A1111's "Refiner: name [hash]" and "Refiner switch at". */
  refiner?: { title: string; switchAt?: number };
  /** A1111's "ControlNet 0", "ControlNet 1", … in order. */
  control?: RecordedControl[];
  /** The image started from the latents of a file (diffuse --latents) with this short hash. */
  initLatentsHash?: string;
  /** A1111's hires fix ("Hires upscale", "Hires upscaler", "Denoising strength", …). */
  hires?: RecordedHires;
}

/** "name: hash, name: hash" (A1111's Lora hashes and TI hashes lists). */
function hashList(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const item of value.split(',')) {
    const at = item.lastIndexOf(':');
    if (at > 0) out[item.slice(0, at).trim()] = item.slice(at + 1).trim();
  }
  return out;
}

/** "passed" or "flagged (black|blur)". */
function safetyRecord(value: string | undefined): Pick<RecordedSettings, 'safetyCheck'> {
  if (value === undefined) return {};
  const flagged = /^flagged(?: \((\w+)\))?$/.exec(value.trim());
  return { safetyCheck: flagged ? { nsfw: true, ...(flagged[1] ? { action: flagged[1] } : {}) } : { nsfw: false } };
}

export function recordedSettings(p: GenerationParameters): RecordedSettings {
  const quantization = /^([\w-]+)(?: \((\w+)\))?$/.exec((p.extra.Quantization ?? '').trim());
  const defined = <T extends object>(o: T): T | undefined => (Object.values(o).some((v) => v !== undefined) ? o : undefined);
  const out: RecordedSettings = {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    steps: p.steps,
    cfgScale: p.cfgScale,
    seed: p.seed,
    width: p.width,
    height: p.height,
    sampler: p.sampler,
    scheduleType: p.scheduleType,
    eta: p.extra.Eta,
    cfgRescale: p.extra['CFG Rescale'],
    seedMode: p.extra['Seed mode'],
    ...(p.extra.Quantization !== undefined ? { quantization: quantization ? { mode: quantization[1]!, ...(quantization[2] ? { format: quantization[2] } : {}) } : { mode: p.extra.Quantization } } : {}),
    sdeNoise: p.extra['SDE noise'],
    watermark: p.extra.Watermark,
    ...safetyRecord(p.extra['Safety checker']),
    sigmaTable: (Object.keys(SIGMA_TABLE_LABELS) as (keyof typeof SIGMA_TABLE_LABELS)[]).find((k) => SIGMA_TABLE_LABELS[k] === p.extra['Sigma table']),
    ensd: p.ensd,
    clipSkip: p.clipSkip,
    promptWeighting: p.extra['Prompt weighting'],
    ...(p.extra['Deep cache'] !== undefined && /^\d+$/.test(p.extra['Deep cache']) ? { deepCache: Number(p.extra['Deep cache']) } : {}),
    ...(p.extra['Token merging ratio'] !== undefined && Number.isFinite(Number(p.extra['Token merging ratio'])) ? { tokenMerging: Number(p.extra['Token merging ratio']) } : {}),
    rng: p.rng ?? 'GPU',
    ...(p.extra['VAE Decoder'] !== undefined ? { vaeDecoder: p.extra['VAE Decoder'] } : {}),
  };
  const variation = defined({ seed: p.variationSeed, strength: p.variationSeedStrength });
  const model = defined({ name: p.model, hash: p.modelHash });
  const vae = defined({ name: p.vae, hash: p.vaeHash });
  const loraHashes = hashList(p.extra['Lora hashes']);
  const switchAt = Number(p.extra['Refiner switch at']);
  const refiner = p.extra.Refiner !== undefined ? { title: p.extra.Refiner, ...(Number.isFinite(switchAt) && p.extra['Refiner switch at'] ? { switchAt } : {}) } : undefined;
  const control: RecordedControl[] = [];
  for (let i = 0; p.extra[`ControlNet ${i}`] !== undefined; i++) control.push(readControlText(p.extra[`ControlNet ${i}`]!));
  const hires = readHires(p);
  return {
    ...out,
    ...(variation ? { variation } : {}),
    ...(model ? { model } : {}),
    ...(vae ? { vae } : {}),
    ...(loraHashes ? { loraHashes } : {}),
    ...(refiner ? { refiner } : {}),
    ...(control.length ? { control } : {}),
    ...(p.extra['Init latents hash'] !== undefined ? { initLatentsHash: p.extra['Init latents hash'] } : {}),
    ...(hires ? { hires } : {}),
  };
}
