// Where generated images go, from the CLI's `-o`:
//
//   -o out.png       a file (.png, .jpg/.jpeg, .webp or .avif: the extension is the format). Several images:
//                    out-1.png, out-2.png, ... (zero-padded to the count's width: out-01.png ... out-12.png, so
//                    they sort). An existing file is an error unless overwriting: the user named that exact file.
//   -o results/      a folder (so is an existing directory, or any name without an image extension; created if
//   -o results       missing). Names come from a template, DEFAULT_NAME_TEMPLATE unless given. A name that is
//   (no -o)          taken gets -1, -2, ... (never clobbers, never fails), unless overwriting.
//                    No -o means the current directory.
//   -o 'out/{seed}-{prompt:40}.webp'
//                    a folder and a template: the path up to the first segment with a placeholder is the folder,
//                    the rest names each image (its extension, .png by default, is the format).
//   -o out.gif       an error: the formats above are the ones that carry the generation parameters.
//
// Template placeholders (values are made file-name safe: path separators, characters Windows forbids and
// control characters become '_', whitespace runs become '_'):
//   {seed} {index} (0-based position in this run) {batch} (0-based position in its batch) {prompt} (first
//   PROMPT_CHARS characters) {date} (YYYY-MM-DD) {time} (HHMMSS), local time {model} {sampler} {steps}
//   {cfg} {width} {height}; {name:N} keeps the first N characters of any of them ({prompt:40}).
// A template may contain '/' to make subfolders ("{date}/{seed}"), but may not climb out of the folder.

import { open, rm, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve, sep } from 'node:path';
import { NameTemplateError, OutputExistsError, OutputNotWritableError, UnsupportedOutputFormatError } from './errors.js';
import { imageFormatOf } from './image-format.js';
import type { ExistingFilePolicy } from './write.js';

export const DEFAULT_NAME_TEMPLATE = '{seed}-{prompt}';
const PROMPT_CHARS = 64;
// Leaves room under the common 255-byte limit for a -NNNN suffix and the extension.
const MAX_SEGMENT_BYTES = 200;
const OTHER_IMAGE_EXTENSIONS = new Set(['.gif', '.tif', '.tiff', '.bmp', '.heic', '.jxl']);

export interface OutputNameVars {
  seed: number;
  index: number;
  batch: number;
  prompt: string;
  model: string;
  sampler: string;
  steps: number;
  cfg: number;
  width: number;
  height: number;
  /** When the image was made; {date} and {time} use local time. */
  date: Date;
}

/** A folder's template, when -o gave one, names its images instead of DEFAULT_NAME_TEMPLATE. */
export type OutputTarget = { kind: 'file'; path: string } | { kind: 'folder'; dir: string; template?: string };

export interface PlannedOutput {
  path: string;
  /** Hand to writeFileAtomic. */
  ifExists: ExistingFilePolicy;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

const PLACEHOLDERS: Record<string, (v: OutputNameVars) => string> = {
  seed: (v) => String(v.seed),
  index: (v) => String(v.index),
  batch: (v) => String(v.batch),
  prompt: (v) => [...v.prompt].slice(0, PROMPT_CHARS).join(''),
  date: (v) => `${v.date.getFullYear()}-${pad2(v.date.getMonth() + 1)}-${pad2(v.date.getDate())}`,
  time: (v) => `${pad2(v.date.getHours())}${pad2(v.date.getMinutes())}${pad2(v.date.getSeconds())}`,
  model: (v) => v.model,
  sampler: (v) => v.sampler,
  steps: (v) => String(v.steps),
  cfg: (v) => String(v.cfg),
  width: (v) => String(v.width),
  height: (v) => String(v.height),
};

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i;

/** A placeholder value made safe as part of one file name. */
function sanitizeNamePart(value: string): string {
  return value
    .replace(/[\s]+/gu, '_')
    .replace(/[<>:"/\\|?*#\u0000-\u001f\u007f]/gu, '_');
}

function truncateUtf8(s: string, maxBytes: number): string {
  let bytes = 0;
  let out = '';
  for (const ch of s) {
    bytes += Buffer.byteLength(ch, 'utf8');
    if (bytes > maxBytes) break;
    out += ch;
  }
  return out;
}

function finishSegment(segment: string, template: string): string {
  // Leading dots hide files; trailing dots and spaces are stripped by Windows; edge '-'/'_' come from empty values.
  const trimmed = truncateUtf8(segment, MAX_SEGMENT_BYTES).replace(/^[.\s_-]+|[.\s_-]+$/gu, '');
  if (trimmed === '') throw new NameTemplateError(template, 'renders to an empty file or folder name');
  return WINDOWS_RESERVED.test(trimmed) ? `_${trimmed}` : trimmed;
}

function renderSegment(segment: string, template: string, vars: OutputNameVars): string {
  if (/[{}]/.test(segment.replace(/\{[^{}]*\}/g, ''))) throw new NameTemplateError(template, 'unbalanced { or }');
  return segment.replace(/\{([^{}]*)\}/g, (_, placeholder: string) => {
    const [, name = '', chars] = /^([^:]*)(?::(\d+))?$/.exec(placeholder) ?? [];
    const render = Object.hasOwn(PLACEHOLDERS, name) ? PLACEHOLDERS[name] : undefined;
    if (!render) throw new NameTemplateError(template, `unknown placeholder {${placeholder}}`);
    const value = render(vars);
    return sanitizeNamePart(chars === undefined ? value : [...value].slice(0, Number(chars)).join(''));
  });
}

/** The relative path a template gives for one image, with the template's image extension (.png when it has none). */
export function renderFileName(template: string, vars: OutputNameVars): string {
  const ext = extname(template);
  const known = imageFormatOf(template) !== undefined;
  const body = known ? template.slice(0, -ext.length) : template;
  if (isAbsolute(body)) throw new NameTemplateError(template, 'must be relative to the output folder');
  // Placeholder values cannot contain separators, so the template's own segments are the path's segments.
  const segments = body.split(/[\\/]/);
  if (segments.includes('..')) throw new NameTemplateError(template, 'may not leave the output folder');
  return `${segments.map((s) => finishSegment(renderSegment(s, template, vars), template)).join(sep)}${known ? ext : '.png'}`;
}

/** Decide whether `-o` names a file or a folder (see the header). `output` undefined means the current directory. */
export async function resolveOutputTarget(output: string | undefined, cwd: string = process.cwd()): Promise<OutputTarget> {
  if (output === undefined || output === '') return { kind: 'folder', dir: cwd };
  const segments = output.split(/[\\/]/);
  const templated = segments.findIndex((s) => /[{}]/.test(s));
  if (templated >= 0) {
    const template = segments.slice(templated).join('/');
    if (OTHER_IMAGE_EXTENSIONS.has(extname(template).toLowerCase())) throw new UnsupportedOutputFormatError(template);
    renderFileName(template, EXAMPLE_VARS);
    return { kind: 'folder', dir: resolve(cwd, segments.slice(0, templated).join('/') || '.'), template };
  }
  const full = resolve(cwd, output);
  if (/[\\/]$/.test(output)) return { kind: 'folder', dir: full };
  const existing = await stat(full).catch(() => undefined);
  if (existing?.isDirectory()) return { kind: 'folder', dir: full };
  if (imageFormatOf(output)) return { kind: 'file', path: full };
  if (OTHER_IMAGE_EXTENSIONS.has(extname(output).toLowerCase())) throw new UnsupportedOutputFormatError(full);
  return { kind: 'folder', dir: full };
}

/** Renders a template once before anything runs, so its mistakes cost nothing. */
const EXAMPLE_VARS: OutputNameVars = { seed: 1, index: 0, batch: 0, prompt: 'p', model: 'm', sampler: 's', steps: 1, cfg: 1, width: 8, height: 8, date: new Date(0) };

/**
 * One output path per image, in order. In a folder without overwrite, repeated names are left to
 * writeFileAtomic's 'suffix' policy (name.png, name-1.png, name-2.png, ... whoever exists already);
 * with overwrite, names that repeat within this run get -1, -2, ... here, so no image of the run
 * replaces another.
 */
export function planOutputs(
  target: OutputTarget,
  images: readonly OutputNameVars[],
  options: { template?: string; overwrite?: boolean } = {},
): PlannedOutput[] {
  const { overwrite = false } = options;
  const template = (target.kind === 'folder' ? target.template : undefined) ?? options.template ?? DEFAULT_NAME_TEMPLATE;
  if (target.kind === 'file') {
    const ifExists: ExistingFilePolicy = overwrite ? 'overwrite' : 'error';
    return filePaths(target, images.length).map((path) => ({ path, ifExists }));
  }
  if (!overwrite) return images.map((vars) => ({ path: join(target.dir, renderFileName(template, vars)), ifExists: 'suffix' }));
  const seen = new Map<string, number>();
  return images.map((vars) => {
    const name = renderFileName(template, vars);
    const count = seen.get(name) ?? 0;
    seen.set(name, count + 1);
    const ext = extname(name);
    const unique = count === 0 ? name : `${name.slice(0, -ext.length)}-${count}${ext}`;
    return { path: join(target.dir, unique), ifExists: 'overwrite' };
  });
}

/** The paths of a file target for `count` images: the file itself, or name-1.png ... name-N.png. */
export function filePaths(target: Extract<OutputTarget, { kind: 'file' }>, count: number): string[] {
  if (count === 1) return [target.path];
  const ext = extname(target.path);
  const stem = target.path.slice(0, target.path.length - ext.length);
  const width = String(count).length;
  return Array.from({ length: count }, (_, i) => `${stem}-${String(i + 1).padStart(width, '0')}${ext}`);
}

/** What one job of a run writes: `count` images to `target`. */
export interface PlannedWrite {
  target: OutputTarget;
  count: number;
  overwrite: boolean;
}

/**
 * Checked before any work, for the whole run (every prompt, batch and image): a file target's
 * names are free (unless overwriting) and the folder they go to exists or can be made and is
 * writable. Jobs writing to the same file share its numbering (name-1 ... name-N over the run). A
 * folder target never refuses a taken name (it takes a free one), so only its folder is checked.
 * Returns each job's paths for a file target, in the order its images are made.
 */
export async function preflightOutputs(writes: readonly PlannedWrite[]): Promise<(string[] | undefined)[]> {
  const totals = new Map<string, number>();
  for (const w of writes) if (w.target.kind === 'file') totals.set(w.target.path, (totals.get(w.target.path) ?? 0) + w.count);
  const used = new Map<string, number>();
  const checked = new Set<string>();
  const result: (string[] | undefined)[] = [];
  for (const w of writes) {
    const dir = w.target.kind === 'file' ? dirname(w.target.path) : w.target.dir;
    if (w.target.kind === 'file') {
      const all = filePaths(w.target, totals.get(w.target.path)!);
      const from = used.get(w.target.path) ?? 0;
      used.set(w.target.path, from + w.count);
      result.push(all.slice(from, from + w.count));
    } else {
      result.push(undefined);
    }
    if (!checked.has(dir)) {
      checked.add(dir);
      await checkWritableFolder(dir, result.at(-1)?.[0] ?? dir);
    }
    for (const path of w.overwrite ? [] : (result.at(-1) ?? [])) {
      if (await stat(path).catch(() => undefined)) throw new OutputExistsError(path);
    }
  }
  return result;
}

/** `dir`, or its nearest existing ancestor (mkdir -p makes the rest), is a writable folder. */
async function checkWritableFolder(dir: string, shown: string): Promise<void> {
  for (let d = dir; ; d = dirname(d)) {
    const found = await stat(d).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err))).catch((err: unknown) => {
      throw new OutputNotWritableError(shown, err);
    });
    if (found) {
      if (!found.isDirectory()) throw new OutputNotWritableError(shown, new Error(`${d} is not a folder`));
      // A file made and removed, not access(): root passes access() where a read-only mount or
      // sysfs still refuses the write.
      const probe = join(d, `.diffuse-probe-${process.pid}.tmp`);
      const handle = await open(probe, 'wx').catch((err: unknown) => {
        throw new OutputNotWritableError(shown, new Error(`${d} is not writable (${(err as NodeJS.ErrnoException).code ?? 'denied'})`));
      });
      await handle.close();
      await rm(probe, { force: true });
      return;
    }
    if (dirname(d) === d) return;
  }
}
