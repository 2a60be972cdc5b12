import { UsageError } from '../errors.js';
import { checkOptionValues } from './option-values.js';
import { GENERATION_OPTIONS, flagName, type GeneratingCommand, type OptionSpec, type SettingKey } from './options.js';

/** A grid larger than this is a typo in a range (A1111 stops at 200 megapixels; 256 tiles of 512x512 are 67). */
export const MAX_XYZ_TILES = 256;

/** The subcommands --xyz runs on. */
export const XYZ_COMMANDS: readonly GeneratingCommand[] = ['txt2img', 'img2img', 'inpaint'];

/** One axis: the option it sets, and its values as the option's parser takes them. */
export interface XyzAxis {
  /** An option of the table, or 'prompt' (A1111's Prompt S/R: the first value is replaced by each). */
  key: SettingKey | 'prompt';
  /** The name as typed ("cfg"): the labels say it. */
  name: string;
  /** A1111's axis type, recorded as X Type, Y Type, Z Type. */
  type: string;
  /** The values as typed (recorded as X Values, ...). */
  typed: string;
  values: (string | number)[];
  /** What the grid writes beside each row or column. */
  labels: string[];
}

/** One image of the plot: its place and what it changes. */
export interface XyzTile {
  x: number;
  y: number;
  z: number;
  prompt: string;
  /** Option values (config-file keys) over the command's own. */
  values: Record<string, string | number>;
}

export interface XyzPlan {
  axes: XyzAxis[];
  counts: { x: number; y: number; z: number };
  /** X varying fastest, then Y, then Z (A1111's index). */
  tiles: XyzTile[];
}

/** Options that are not part of what an image looks like: a run's, a machine's, or one image's file. */
const NOT_AN_AXIS: Partial<Record<SettingKey, string>> = {
  output: 'the grid is one file',
  overwrite: 'a run option',
  batchSize: 'each tile is one image',
  batchCount: 'each tile is one image',
  quality: 'the grid is one file of one quality',
  preview: 'a run option',
  previewEvery: 'a run option',
  previewMethod: 'a run option',
  device: 'every tile runs on one provider',
  threads: 'a run option (it does not change the picture)',
  optimizedCache: 'a cache of the machine',
  offline: 'a run option',
  yes: 'a run option',
  control: 'its value is a list of units; give --control for every tile',
};

/** A1111's axis names for the options it has, else the option's own key. */
const A1111_TYPES: Partial<Record<SettingKey | 'prompt', string>> = {
  prompt: 'Prompt S/R',
  seed: 'Seed',
  variationSeed: 'Var. seed',
  variationStrength: 'Var. strength',
  steps: 'Steps',
  cfgScale: 'CFG Scale',
  sampler: 'Sampler',
  schedule: 'Schedule type',
  model: 'Checkpoint name',
  vae: 'VAE',
  clipSkip: 'Clip skip',
  eta: 'Eta',
  ensd: 'ENSD',
  strength: 'Denoising',
  refiner: 'Refiner checkpoint',
  refinerSwitch: 'Refiner switch at',
  rng: 'RNG source',
  cfgRescale: 'CFG Rescale',
};

const OPTIONS = GENERATION_OPTIONS as readonly OptionSpec[];
const AXES = ['X', 'Y', 'Z'] as const;

/**
 * --xyz "sampler=euler,dpmpp_2m;cfg=4,7;steps=10,20": up to three axes (X;Y;Z), each an option of
 * the table (its config key, its flag's name, or cfg; prompt for A1111's Prompt S/R) and a
 * comma-separated list of values ("quoted, if a value has a comma"). Numeric options take A1111's
 * ranges: 1-5, 1-10 (+2), 10-1 (-3), 1-10 [5] (five values evenly spaced). Every value passes the
 * option's own parser here, before any model is chosen.
 */
export function parseXyz(spec: string, command: GeneratingCommand, prompt: string): XyzPlan {
  if (!XYZ_COMMANDS.includes(command)) throw new UsageError(`--xyz runs on ${XYZ_COMMANDS.join(', ')}, not ${command}`);
  const parts = splitOutside(spec, ';');
  if (parts.every((p) => p.trim() === '')) throw new UsageError('--xyz is empty; write e.g. --xyz "sampler=euler,dpmpp_2m;cfg=4,7"');
  if (parts.length > 3) throw new UsageError(`--xyz has ${parts.length} axes; at most 3 (X;Y;Z)`);
  const axes = parts.map((part, i) => axisOf(part, AXES[i]!, command, prompt));
  for (const [i, a] of axes.entries()) {
    const twin = axes.findIndex((b) => b.key === a.key);
    if (twin !== i) throw new UsageError(`--xyz: ${a.name} is axis ${AXES[twin]} and axis ${AXES[i]}; give each option one axis`);
  }
  const [nx, ny, nz] = [0, 1, 2].map((i) => axes[i]?.values.length ?? 1) as [number, number, number];
  if (nx * ny * nz > MAX_XYZ_TILES) throw new UsageError(`--xyz makes ${nx}x${ny}x${nz} = ${nx * ny * nz} images; at most ${MAX_XYZ_TILES}: split the plot`);
  const tiles: XyzTile[] = [];
  for (let z = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) tiles.push(tileOf(axes, [x, y, z], prompt));
    }
  }
  return { axes, counts: { x: nx, y: ny, z: nz }, tiles };
}

function tileOf(axes: readonly XyzAxis[], at: readonly number[], prompt: string): XyzTile {
  const tile: XyzTile = { x: at[0]!, y: at[1]!, z: at[2]!, prompt, values: {} };
  axes.forEach((axis, i) => {
    const value = axis.values[at[i]!]!;
    // Python's str.replace, as A1111's apply_prompt: every occurrence.
    if (axis.key === 'prompt') tile.prompt = tile.prompt.split(String(axis.values[0])).join(String(value));
    else tile.values[axis.key] = value;
  });
  return tile;
}

function axisOf(part: string, axis: string, command: GeneratingCommand, prompt: string): XyzAxis {
  const eq = part.indexOf('=');
  if (eq < 0) throw new UsageError(`--xyz axis ${axis} '${part.trim()}': write option=value,value,... (e.g. cfg=4,7)`);
  const name = part.slice(0, eq).trim();
  const typed = part.slice(eq + 1).trim();
  const key = axisKey(name, axis);
  const where = `--xyz ${name}`;
  const items = splitOutside(typed, ',').map(unquote);
  if (typed === '' || items.some((v) => v === '')) throw new UsageError(`${where}: an empty value; give a list such as ${name}=1,2,3`);
  if (key === 'prompt') {
    if (!prompt.includes(items[0]!)) throw new UsageError(`${where}: '${items[0]}' is not in the prompt; the first value is the text each value replaces (A1111's Prompt S/R)`);
    return { key, name, type: A1111_TYPES.prompt!, typed, values: items, labels: items };
  }
  const o = OPTIONS.find((s) => s.key === key)!;
  if (o.commands && !o.commands.includes(command)) throw new UsageError(`${where}: not an option of ${command} (it belongs to ${o.commands.join(', ')})`);
  const values = o.parse.numberKind ? items.flatMap((v) => expandRange(v, o.parse.numberKind!, where)) : items;
  for (const v of values) checkOptionValues({ [key]: v }, where, command);
  // As A1111: a number is labelled with its axis ("cfg: 7"), a name (a sampler, a model) stands alone.
  const labels = values.map((v) => (o.parse.numberKind ? `${name}: ${v}` : String(v)));
  return { key, name, type: A1111_TYPES[key] ?? key, typed, values, labels };
}

function axisKey(name: string, axis: string): SettingKey | 'prompt' {
  const bare = name.replace(/^-+/, '').toLowerCase();
  if (bare === 'prompt') return 'prompt';
  if (bare === 'cfg') return 'cfgScale';
  const o = OPTIONS.find((s) => s.key.toLowerCase() === bare || flagName(s).slice(2).toLowerCase() === bare);
  if (!o) throw new UsageError(`--xyz axis ${axis}: unknown option '${name}' (an option of the generating commands, as in config files: steps, cfgScale or cfg, sampler, seed, model, ...; or prompt)`);
  const why = NOT_AN_AXIS[o.key];
  if (why) throw new UsageError(`--xyz axis ${axis}: ${name} cannot be an axis (${why})`);
  return o.key;
}

const INT_RANGE = /^([+-]?\d+)\s*-\s*([+-]?\d+)(?:\s*\(([+-]\d+)\s*\))?$/;
const INT_COUNT = /^([+-]?\d+)\s*-\s*([+-]?\d+)\s*\[(\d+)\s*\]$/;
const FLOAT_RANGE = /^([+-]?\d+(?:\.\d*)?)\s*-\s*([+-]?\d+(?:\.\d*)?)(?:\s*\(([+-]\d+(?:\.\d*)?)\s*\))?$/;
const FLOAT_COUNT = /^([+-]?\d+(?:\.\d*)?)\s*-\s*([+-]?\d+(?:\.\d*)?)\s*\[(\d+)\s*\]$/;

/**
 * A1111's process_axis ranges: integers as Python's range(start, end + 1, step) and
 * int(np.linspace(start, end, n)); other numbers as np.arange(start, end + step, step) and
 * np.linspace. A value that is no range is itself.
 */
function expandRange(text: string, kind: 'integer' | 'number', where: string): (string | number)[] {
  const [range, count] = kind === 'integer' ? [INT_RANGE, INT_COUNT] : [FLOAT_RANGE, FLOAT_COUNT];
  const r = range.exec(text);
  if (r) {
    const [start, end, step] = [Number(r[1]), Number(r[2]), r[3] === undefined ? 1 : Number(r[3])];
    if (step === 0) throw new UsageError(`${where}: '${text}' has a step of 0`);
    // range() stops before end + 1; arange before end + step (floating point decides the last value, as in numpy).
    const stop = kind === 'integer' ? end + 1 : end + step;
    const n = Math.max(0, Math.ceil((stop - start) / step));
    if (n === 0) throw new UsageError(`${where}: '${text}' is an empty range (write a step that goes from the first number towards the second, e.g. 10-1 (-3))`);
    if (n > MAX_XYZ_TILES) throw new UsageError(`${where}: '${text}' makes ${n} values; at most ${MAX_XYZ_TILES} images in a plot`);
    return Array.from({ length: n }, (_, i) => start + i * step);
  }
  const c = count.exec(text);
  if (c) {
    const [start, end, n] = [Number(c[1]), Number(c[2]), Number(c[3])];
    if (n === 0) throw new UsageError(`${where}: '${text}' asks for 0 values`);
    if (n > MAX_XYZ_TILES) throw new UsageError(`${where}: '${text}' makes ${n} values; at most ${MAX_XYZ_TILES} images in a plot`);
    // numpy: i * step + start, the last value set to end.
    const step = n > 1 ? (end - start) / (n - 1) : 0;
    const values = Array.from({ length: n }, (_, i) => (n > 1 && i === n - 1 ? end : i * step + start));
    return kind === 'integer' ? values.map(Math.trunc) : values;
  }
  return [text];
}

/** `text` split at `sep` outside double quotes. */
function splitOutside(text: string, sep: string): string[] {
  const parts = [''];
  let quoted = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    if (char === sep && !quoted) parts.push('');
    else parts[parts.length - 1] += char;
  }
  if (quoted) throw new UsageError(`--xyz: a " is not closed in '${text}'`);
  return parts;
}

/** A value trimmed, its surrounding quotes removed ("" inside stands for one ", as in CSV). */
function unquote(value: string): string {
  const v = value.trim();
  return /^".*"$/s.test(v) ? v.slice(1, -1).replace(/""/g, '"') : v;
}
