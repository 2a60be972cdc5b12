import { UsageError } from '../errors.js';
import { imageFormatOf, type ImageFormat } from '../image/image-format.js';
import { checkOptionValues } from '../settings/option-values.js';
import { GENERATING_COMMANDS, GENERATION_OPTIONS, parseInteger, type GeneratingCommand, type OptionSpec } from '../settings/options.js';
import { describe, isScalar, objectAt, type Manifest } from './manifest.js';
import { projectPath } from './project-path.js';
import { render, resolveVars } from './template.js';

/** What happens to an image after it is made, before it is written. */
export interface Post {
  /** Resized with PIL's Lanczos (A1111's resize), as `just-resize` does. */
  resize?: { width: number; height: number };
  quality?: number;
}

/** One output of a manifest: the file, and the same option values a command line or a prompts line gives. */
export interface Asset {
  /** Relative to the project (the manifest's folder), with / between parts: the lock's key. */
  path: string;
  command: GeneratingCommand;
  prompt: string;
  /** Option values (config-file keys), templates filled in; input paths relative to the project. */
  values: Record<string, unknown>;
  post: Post;
  format: ImageFormat;
  /** Where messages say it came from: "assets.yaml outputs.img/{{color}}.png (color=red)". */
  where: string;
}

/** Keys of an output besides the options. */
const ASSET_KEYS = ['command', 'prompt', 'matrix', 'post'];
const POST_KEYS = ['resize', 'format', 'quality'];
/** The project's files an output reads: they must lie inside the project, and their bytes count for freshness. */
export const INPUT_KEYS = ['initImage', 'mask', 'depthMap'] as const;

/**
 * Options a manifest does not take, and why: the path is the output; each output is one image;
 * the machine's choices are the build command's flags (they do not change the picture's numbers).
 */
const NOT_IN_MANIFEST: Record<string, string> = {
  output: 'the output path is the key under outputs',
  overwrite: 'a build replaces the files it owns',
  batchSize: 'an output is one image: use a matrix over seed for several',
  batchCount: 'an output is one image: use a matrix over seed for several',
  quality: 'write it under post: { quality: N }',
  preview: 'previews are for a terminal run',
  previewEvery: 'previews are for a terminal run',
  previewMethod: 'previews are for a terminal run',
  device: 'pass --device to diffuse build (the lock records the provider)',
  threads: 'pass --threads to diffuse build',
  optimizedCache: 'a cache of the machine, not of the asset',
  offline: 'pass --offline to diffuse build',
  yes: 'pass --yes to diffuse build',
};

/** A matrix larger than this is a typo (a 10,000-image build is several manifests). */
const MAX_ASSETS = 10_000;

/**
 * Every output of a manifest, matrices expanded, sorted by path: defaults under each output's own
 * values, {{name}} filled from vars and the matrix, each value checked by its option's parser, paths
 * kept inside the project. Nothing is read or loaded here but the folders paths resolve through.
 */
export function manifestAssets(manifest: Manifest, projectDir: string): Asset[] {
  const vars = resolveVars(manifest.vars, `${manifest.name}: vars`);
  const defaults = checkKeys(manifest.defaults, `${manifest.name}: defaults`, false);
  const assets: Asset[] = [];
  for (const [pathTemplate, spec] of Object.entries(manifest.outputs)) {
    const where = `${manifest.name}: outputs.${pathTemplate}`;
    const own = checkKeys(spec, where, true);
    const combos = matrixOf(own.matrix, where, vars);
    if (assets.length + combos.length > MAX_ASSETS) throw new UsageError(`${manifest.name}: more than ${MAX_ASSETS} outputs; split the manifest`);
    for (const combo of combos) {
      const label = Object.keys(combo).length ? `${where} (${Object.entries(combo).map(([k, v]) => `${k}=${v}`).join(', ')})` : where;
      assets.push(assetOf(pathTemplate, { ...defaults, ...own, ...optionsIn(combo) }, { ...vars, ...combo }, label, projectDir));
    }
  }
  const seen = new Map<string, string>();
  for (const a of assets) {
    const other = seen.get(a.path);
    if (other) throw new UsageError(`${a.where}: makes ${a.path}, as ${other} does; give each output its own path (put every matrix variable in it)`);
    seen.set(a.path, a.where);
  }
  return assets.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const OPTION_KEYS = new Set((GENERATION_OPTIONS as readonly OptionSpec[]).map((o) => o.key as string));

function checkKeys(spec: Record<string, unknown>, where: string, isOutput: boolean): Record<string, unknown> {
  for (const key of Object.keys(spec)) {
    if (key in NOT_IN_MANIFEST) throw new UsageError(`${where}: '${key}' is not taken in a manifest: ${NOT_IN_MANIFEST[key]}`);
    if (key === 'matrix' && !isOutput) throw new UsageError(`${where}: matrix belongs to an output, not to defaults`);
    if (!ASSET_KEYS.includes(key) && !OPTION_KEYS.has(key)) {
      // The options table's own message names the key and the nearest spelling.
      checkOptionValues({ [key]: spec[key] }, where, 'txt2img');
    }
  }
  return spec;
}

/** The matrix's combinations, the first key varying slowest; one empty combination without a matrix. */
function matrixOf(raw: unknown, where: string, vars: Record<string, string>): Record<string, string>[] {
  if (raw === undefined) return [{}];
  const matrix = objectAt(raw, `${where}: matrix`, 'a mapping of names to lists of values');
  let combos: Record<string, string>[] = [{}];
  for (const [name, list] of Object.entries(matrix)) {
    if (!/^[A-Za-z_][\w-]*$/.test(name)) throw new UsageError(`${where}: matrix.${name}: a name is letters, digits, _ and - (used as {{name}})`);
    if (name in vars) throw new UsageError(`${where}: matrix.${name} is also a variable in vars; rename one`);
    if (!Array.isArray(list) || list.length === 0 || !list.every(isScalar)) throw new UsageError(`${where}: matrix.${name} must be a list of values, e.g. [1, 2, 3] (got ${describe(list)})`);
    combos = combos.flatMap((c) => list.map((v) => ({ ...c, [name]: String(v) })));
    if (combos.length > MAX_ASSETS) throw new UsageError(`${where}: the matrix makes more than ${MAX_ASSETS} outputs; split it`);
  }
  return combos;
}

/** A matrix name that is an option (seed, sampler, cfgScale, ...) or the prompt sets it too. */
function optionsIn(combo: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(combo).filter(([k]) => OPTION_KEYS.has(k) || k === 'prompt' || k === 'command'));
}

function assetOf(pathTemplate: string, merged: Record<string, unknown>, values: Record<string, string>, where: string, projectDir: string): Asset {
  const { command: rawCommand = 'txt2img', prompt: rawPrompt, matrix: _matrix, post: rawPost, ...rest } = merged;
  const fill = (v: unknown, key: string): unknown => (typeof v === 'string' ? render(v, values, `${where}: ${key}`) : v);
  const command = fill(rawCommand, 'command');
  if (typeof command !== 'string' || !(GENERATING_COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`${where}: command must be one of ${GENERATING_COMMANDS.join(', ')} (got ${describe(command)})`);
  }
  const prompt = fill(rawPrompt, 'prompt');
  if (typeof prompt !== 'string') throw new UsageError(`${where}: prompt must be text (got ${rawPrompt === undefined ? 'none' : describe(prompt)})`);
  const options = Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, fill(v, k)]));
  checkOptionValues(options, where, command as GeneratingCommand);
  if (options.seed === undefined) throw new UsageError(`${where}: no seed; a build must make the same image every time: set seed: in the output or in defaults`);
  for (const key of INPUT_KEYS) if (typeof options[key] === 'string') options[key] = projectPath(projectDir, options[key], `${where}: ${key}`);
  const path = projectPath(projectDir, render(pathTemplate, values, `${where} (the path)`), `${where} (the path)`);
  const format = imageFormatOf(path);
  if (!format) throw new UsageError(`${where}: ${path} must end in .png, .jpg, .webp or .avif (the extension picks the format)`);
  return { path, command: command as GeneratingCommand, prompt, values: options, post: postOf(rawPost, `${where}: post`, format), format, where };
}

function postOf(raw: unknown, where: string, format: ImageFormat): Post {
  if (raw === undefined) return {};
  const post = objectAt(raw, where, 'a mapping (resize:, format:, quality:)');
  for (const key of Object.keys(post)) if (!POST_KEYS.includes(key)) throw new UsageError(`${where}: unknown key '${key}' (known: ${POST_KEYS.join(', ')})`);
  const out: Post = {};
  if (post.format !== undefined && imageFormatOf(`x.${String(post.format)}`) !== format) {
    throw new UsageError(`${where}: format ${describe(post.format)} but the path's extension says ${format}; the extension picks the format, so name the file for it`);
  }
  if (post.quality !== undefined) out.quality = parseInteger(1, 100)(post.quality, `${where}: quality`);
  if (post.resize !== undefined) {
    const m = /^(\d+)x(\d+)$/.exec(String(post.resize));
    if (!m) throw new UsageError(`${where}: resize must be WIDTHxHEIGHT, e.g. 64x64 (got ${describe(post.resize)})`);
    const size = parseInteger(1, 8192);
    out.resize = { width: size(m[1], `${where}: resize width`), height: size(m[2], `${where}: resize height`) };
  }
  return out;
}
