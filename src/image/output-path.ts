// Where generated images go, from the CLI's `-o`:
//
//   -o out.png       a file. Several images: out-1.png, out-2.png, ... (zero-padded to the count's width:
//                    out-01.png ... out-12.png, so they sort). An existing file is an error unless overwriting:
//                    the user named that exact file.
//   -o results/      a folder (so is an existing directory, or any name not ending in .png; created if
//   -o results       missing). Names come from a template, DEFAULT_NAME_TEMPLATE unless given. A name that is
//   (no -o)          taken gets -1, -2, ... (never clobbers, never fails), unless overwriting.
//                    No -o means the current directory.
//   -o out.jpg       an error: only PNG carries the generation parameters.
//
// Template placeholders (values are made file-name safe: path separators, characters Windows forbids and
// control characters become '_', whitespace runs become '_'):
//   {seed} {index} (0-based position in this run) {batch} (0-based position in its batch) {prompt} (first
//   PROMPT_CHARS characters) {date} (YYYY-MM-DD) {time} (HHMMSS), local time {model} {sampler} {steps}
//   {cfg} {width} {height}
// A template may contain '/' to make subfolders ("{date}/{seed}"), but may not climb out of the folder.

import { stat } from 'node:fs/promises';
import { extname, isAbsolute, join, resolve, sep } from 'node:path';
import { NameTemplateError, UnsupportedOutputFormatError } from './errors.js';
import type { ExistingFilePolicy } from './write.js';

export const DEFAULT_NAME_TEMPLATE = '{seed}-{prompt}';
const PROMPT_CHARS = 64;
// Leaves room under the common 255-byte limit for a -NNNN suffix and the extension.
const MAX_SEGMENT_BYTES = 200;
const OTHER_IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.bmp', '.avif', '.heic', '.jxl']);

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

export type OutputTarget = { kind: 'file'; path: string } | { kind: 'folder'; dir: string };

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
  return segment.replace(/\{([^{}]*)\}/g, (_, name: string) => {
    const render = Object.hasOwn(PLACEHOLDERS, name) ? PLACEHOLDERS[name] : undefined;
    if (!render) throw new NameTemplateError(template, `unknown placeholder {${name}}`);
    return sanitizeNamePart(render(vars));
  });
}

/** The relative path (with .png) a template gives for one image. */
export function renderFileName(template: string, vars: OutputNameVars): string {
  const body = template.replace(/\.png$/i, '');
  if (isAbsolute(body)) throw new NameTemplateError(template, 'must be relative to the output folder');
  // Placeholder values cannot contain separators, so the template's own segments are the path's segments.
  const segments = body.split(/[\\/]/);
  if (segments.includes('..')) throw new NameTemplateError(template, 'may not leave the output folder');
  return `${segments.map((s) => finishSegment(renderSegment(s, template, vars), template)).join(sep)}.png`;
}

/** Decide whether `-o` names a file or a folder (see the header). `output` undefined means the current directory. */
export async function resolveOutputTarget(output: string | undefined, cwd: string = process.cwd()): Promise<OutputTarget> {
  if (output === undefined || output === '') return { kind: 'folder', dir: cwd };
  const full = resolve(cwd, output);
  if (/[\\/]$/.test(output)) return { kind: 'folder', dir: full };
  const existing = await stat(full).catch(() => undefined);
  if (existing?.isDirectory()) return { kind: 'folder', dir: full };
  const ext = extname(output).toLowerCase();
  if (ext === '.png') return { kind: 'file', path: full };
  if (OTHER_IMAGE_EXTENSIONS.has(ext)) throw new UnsupportedOutputFormatError(full);
  return { kind: 'folder', dir: full };
}

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
  const { template = DEFAULT_NAME_TEMPLATE, overwrite = false } = options;
  if (target.kind === 'file') {
    const ifExists: ExistingFilePolicy = overwrite ? 'overwrite' : 'error';
    if (images.length === 1) return [{ path: target.path, ifExists }];
    const ext = extname(target.path);
    const stem = target.path.slice(0, target.path.length - ext.length);
    const width = String(images.length).length;
    return images.map((_, i) => ({ path: `${stem}-${String(i + 1).padStart(width, '0')}${ext}`, ifExists }));
  }
  if (!overwrite) return images.map((vars) => ({ path: join(target.dir, renderFileName(template, vars)), ifExists: 'suffix' }));
  const seen = new Map<string, number>();
  return images.map((vars) => {
    const name = renderFileName(template, vars);
    const count = seen.get(name) ?? 0;
    seen.set(name, count + 1);
    const unique = count === 0 ? name : `${name.slice(0, -'.png'.length)}-${count}.png`;
    return { path: join(target.dir, unique), ifExists: 'overwrite' };
  });
}
