import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { floatToHalf } from '../../src/onnx/dtype.js';
import { encodeSafetensors } from '../../src/text/safetensors-write.js';
import { FIXTURES, readJson } from './fixtures.js';

/**
 * The graph builder's test checkpoints, written from their committed recipes exactly as
 * tools/synthetic_checkpoint.py writes them (same hash, same layout: the SHA-256 is checked
 * against the one the Python side recorded), and the inputs the references were computed on.
 */

export const GRAPH_FIXTURES = join(FIXTURES, 'graphs');

/** [key, dtype, shape, kind, scale exponent, mean, value stream (default: the entry's index)] */
export type RecipeEntry = [string, string, number[], 'uniform' | 'arange', number, number, number?];

export interface Recipe {
  seed: number;
  tensors: RecipeEntry[];
  /** The header's __metadata__ (transformers loads only files that say {"format": "pt"}). */
  metadata?: Record<string, string>;
}

export function readRecipe(name: string): Recipe {
  return readJson<Recipe>(join(GRAPH_FIXTURES, `${name}.recipe.json.gz`));
}

function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Element i of the index-th stream: mean + (k - 64) * 2^(scaleExp - 6), k the hash's top 7 bits. */
export function syntheticValues(seed: number, index: number, count: number, scaleExp: number, mean: number): Float64Array {
  const base = (Math.imul(index + 1, 0x9e3779b9) + Math.imul(seed, 0x85ebca6b)) >>> 0;
  const step = 2 ** (scaleExp - 6);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = mean + ((lowbias32((base + i) >>> 0) >>> 25) - 64) * step;
  return out;
}

/** An input the references were computed on: uniform in [-1, 1), float32. */
export function syntheticInput(seed: number, index: number, shape: readonly number[]): Float32Array {
  return Float32Array.from(syntheticValues(seed, index, shape.reduce((a, b) => a * b, 1), 0, 0));
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };

function encode(entry: RecipeEntry, seed: number, index: number): Uint8Array {
  const [, dtype, shape, kind, scaleExp, mean, stream] = entry;
  const count = shape.reduce((a, b) => a * b, 1);
  if (kind === 'arange') {
    if (dtype === 'I64') return new Uint8Array(BigInt64Array.from({ length: count }, (_, i) => BigInt(i)).buffer);
    return new Uint8Array(Int32Array.from({ length: count }, (_, i) => i).buffer);
  }
  const values = syntheticValues(seed, stream ?? index, count, scaleExp, mean);
  if (dtype === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  if (dtype === 'F16') return new Uint8Array(Uint16Array.from(values, (v) => floatToHalf(v)).buffer);
  if (dtype === 'BF16') return new Uint8Array(Uint16Array.from(new Uint32Array(Float32Array.from(values).buffer), (bits) => bits >>> 16).buffer);
  throw new Error(`recipe dtype ${dtype} for a uniform tensor`);
}

/** The safetensors bytes of a recipe: compact JSON header in recipe order, space-padded to 8, data back to back. */
export function checkpointBytes(recipe: Recipe): Uint8Array {
  return encodeSafetensors(
    recipe.tensors.map((entry, t) => {
      const data = encode(entry, recipe.seed, t);
      if (data.length !== entry[2].reduce((a, b) => a * b, 1) * DTYPE_BYTES[entry[1]]!) throw new Error(`recipe entry ${entry[0]} encodes to ${data.length} bytes`);
      return { name: entry[0], dtype: entry[1], shape: entry[2], data };
    }),
    recipe.metadata,
  );
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes `<dir>/<file>` from the named recipe (optionally edited first) and returns its path. */
export function writeCheckpoint(dir: string, name: string, file = `${name}.safetensors`, edit?: (r: Recipe) => Recipe): string {
  const recipe = readRecipe(name);
  const path = join(dir, file);
  writeFileSync(path, checkpointBytes(edit ? edit(recipe) : recipe));
  return path;
}

/**
 * A recipe's weights as a diffusers (PyTorch) folder (tools/make_graph_fixtures.py's
 * diffusers_folder: the same values under diffusers' names), with tiny-sd's tokenizer; or any
 * `<layout>.diffusers.json.gz` with the tokenizer folders given (tools/make_sdxl_folder_fixture.py).
 */
export function writeDiffusersFolder(
  dir: string,
  name: string,
  from: { layoutDir: string; tokenizers: Record<string, string> } = { layoutDir: GRAPH_FIXTURES, tokenizers: { tokenizer: join(FIXTURES, 'tiny-sd', 'tokenizer') } },
): string {
  const layout = readJson<{ files: Record<string, Recipe>; configs: Record<string, unknown> }>(join(from.layoutDir, `${name}.diffusers.json.gz`));
  const write = (rel: string, data: Uint8Array | string): void => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), data);
  };
  for (const [rel, recipe] of Object.entries(layout.files)) write(rel, checkpointBytes(recipe));
  for (const [rel, config] of Object.entries(layout.configs)) write(rel, JSON.stringify(config));
  for (const [part, source] of Object.entries(from.tokenizers)) cpSync(source, join(dir, part), { recursive: true });
  return dir;
}

/** A reference array and where an input was drawn from (tools/graph_fixture_refs.py). */
export interface ArrayRef {
  file: string;
  shape: number[];
}
export interface InputRef {
  index: number;
  shape: number[];
}

export interface GraphFixture {
  name: string;
  family: 'sd1' | 'sd2';
  dtype: string;
  sha256: string;
  a1111Hash: string;
  a1111OldHash: string;
  text: { input_ids: number[]; last_hidden_state: ArrayRef; pooler_output: ArrayRef; clip_skip_2: ArrayRef };
  unet: Array<{ name: string; sample: InputRef; context: InputRef; timestep: number; out_sample: ArrayRef }>;
  vae: { decoder: { latent_sample: InputRef; sample: ArrayRef }; encoder: { sample: InputRef; latent_parameters: ArrayRef } };
  probe?: { statistic: number; prediction: 'epsilon' | 'v_prediction' };
  txt2img?: import('./reference-case.js').ReferenceCase & { final_latents: ArrayRef };
}

export function graphFixture(name: string): GraphFixture {
  const all = readJson<{ models: GraphFixture[] }>(join(GRAPH_FIXTURES, 'cases.json')).models;
  const hit = all.find((m) => m.name === name);
  if (!hit) throw new Error(`no graph fixture ${name}`);
  return hit;
}
