import jsYaml from 'js-yaml';
import { basename } from 'node:path';
import { UsageError } from '../errors.js';
import { readInputFile } from '../input-file.js';

/**
 * An assets manifest as written: `vars` (text filled into {{name}}), `defaults` (what every output
 * shares) and `outputs` (path → what makes it). Only the shape is checked here; src/build/assets.ts
 * turns each output into an asset and checks its values.
 */
export interface Manifest {
  /** The file, for messages ("assets.yaml"). */
  name: string;
  vars: Record<string, string>;
  defaults: Record<string, unknown>;
  outputs: Record<string, Record<string, unknown>>;
}

/** A manifest is a page of settings; this is far above any real one. */
const MAX_MANIFEST_BYTES = 4 * 2 ** 20;
const TOP_KEYS = ['vars', 'defaults', 'outputs'];

/**
 * YAML or JSON (JSON is read as YAML 1.2, which it is, so duplicate keys are refused in both:
 * JSON.parse would keep the last silently). The core schema reads plain scalars as strings,
 * numbers, booleans and null only: no dates, no custom tags.
 */
export async function readManifest(path: string): Promise<Manifest> {
  const text = (await readInputFile(path, { label: 'build', maxBytes: MAX_MANIFEST_BYTES, hint: 'split it into several manifests' })).toString('utf8');
  const name = basename(path);
  let doc: unknown;
  try {
    doc = jsYaml.load(text, { schema: jsYaml.CORE_SCHEMA, filename: name });
  } catch (err) {
    const reason = err instanceof jsYaml.YAMLException ? `${err.reason} (line ${err.mark.line + 1})` : (err as Error).message;
    throw new UsageError(`${name}: cannot read it: ${reason}`, { cause: err });
  }
  return manifestOf(doc, name);
}

export function manifestOf(doc: unknown, name: string): Manifest {
  const top = objectAt(doc, name, 'the manifest must be a mapping with outputs: (and optionally vars:, defaults:)');
  for (const key of Object.keys(top)) if (!TOP_KEYS.includes(key)) throw new UsageError(`${name}: unknown key '${key}' at the top (known: ${TOP_KEYS.join(', ')})`);
  if (top.outputs === undefined) throw new UsageError(`${name}: no outputs: list the files to make, e.g. outputs: { img/fox.png: { prompt: a fox, seed: 1 } }`);
  const outputs = objectAt(top.outputs, `${name}: outputs`, 'a mapping of file paths to what makes them');
  if (Object.keys(outputs).length === 0) throw new UsageError(`${name}: outputs is empty: list the files to make`);
  const vars = objectAt(top.vars ?? {}, `${name}: vars`, 'a mapping of names to text');
  for (const [key, value] of Object.entries(vars)) {
    if (!/^[A-Za-z_][\w-]*$/.test(key)) throw new UsageError(`${name}: vars.${key}: a variable name is letters, digits, _ and - (used as {{name}})`);
    if (!isScalar(value)) throw new UsageError(`${name}: vars.${key} must be text or a number (got ${describe(value)})`);
  }
  return {
    name,
    vars: Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)])),
    defaults: objectAt(top.defaults ?? {}, `${name}: defaults`, 'a mapping of settings every output shares'),
    outputs: Object.fromEntries(Object.entries(outputs).map(([path, spec]) => [path, objectAt(spec ?? {}, `${name}: outputs.${path}`, 'a mapping of settings (prompt:, seed:, ...)')])),
  };
}

export function objectAt(value: unknown, where: string, what: string): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${where} must be ${what} (got ${describe(value)})`);
  return value as Record<string, unknown>;
}

export const isScalar = (v: unknown): v is string | number | boolean => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

export function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'nothing';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}
