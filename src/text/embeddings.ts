import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { InputFileError, readInputFileSync } from '../input-file.js';
import { EmbeddingError } from './embedding-error.js';
import { PickleObject, type PickleValue } from './pickle-reader.js';
import { parseSafetensors } from './safetensors.js';
import { TorchTensor, readTorchFile } from './torch-file.js';
import type { FloatTensor } from './tensor-values.js';

export { EmbeddingError } from './embedding-error.js';

/**
 * Textual-inversion embeddings in the formats people share them in:
 * - A1111 .safetensors: { emb_params: [n, dim] } (or any file holding a single tensor);
 * - A1111 .pt: { string_to_param: { '*': [n, dim] }, ... } (torch 1.11 files: an nn.ParameterDict);
 * - diffusers learned_embeds.bin / .safetensors: { '<token>': [n, dim] or [dim] }.
 * A1111 names an embedding after its file (the trigger word in prompts); diffusers files also
 * carry their own token, kept in `token`.
 */

export const EMBEDDING_EXTENSIONS = ['.safetensors', '.pt', '.bin'] as const;
/** Real embeddings are kilobytes; anything this big is not one, and is not read. */
export const MAX_EMBEDDING_FILE_BYTES = 64 * 1024 * 1024;
/** A1111 refuses embeddings longer than one 75-token prompt chunk. */
export const MAX_EMBEDDING_VECTORS = 75;

export interface TextualInversion {
  /** The trigger word: the file name without its extension (A1111). */
  name: string;
  /** The token a diffusers file was trained for (e.g. '<cat-toy>'), when it names one. */
  token?: string;
  /** [count, width] row-major float32. */
  vectors: Float32Array;
  count: number;
  width: number;
  /** sha256 of the file's bytes. */
  sha256: string;
}

function readCapped(path: string): Uint8Array {
  try {
    // A plain Uint8Array: the parsers' slice() must copy, as Buffer's does not.
    return new Uint8Array(readInputFileSync(path, { label: 'embedding', maxBytes: MAX_EMBEDDING_FILE_BYTES, exitCode: 1, hint: 'too big for a textual-inversion embedding' }));
  } catch (err) {
    if (err instanceof InputFileError) throw new EmbeddingError(`cannot read embedding ${path}: ${err.reason}`, { cause: err });
    throw err;
  }
}

/** Reads one embedding file; every problem is an EmbeddingError naming the file. */
export function readEmbedding(path: string): TextualInversion {
  return parseEmbedding(readCapped(path), basename(path));
}

/** Parses embedding bytes; `fileName` gives the format (extension) and the trigger word. */
export function parseEmbedding(bytes: Uint8Array, fileName: string): TextualInversion {
  const ext = extname(fileName).toLowerCase();
  const name = basename(fileName, extname(fileName));
  try {
    const picked =
      ext === '.safetensors'
        ? pickTensor(parseSafetensors(bytes).tensors)
        : ext === '.pt' || ext === '.bin'
          ? pickFromTorch(readTorchFile(bytes))
          : fail(`unknown embedding extension '${ext}' (expected ${EMBEDDING_EXTENSIONS.join(', ')})`);
    const { count, width } = matrixShape(picked.tensor.shape);
    const vectors = picked.tensor.data;
    if (!vectors.every(Number.isFinite)) fail('the embedding holds NaN or infinite values');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return { name, ...(picked.token !== undefined ? { token: picked.token } : {}), vectors, count, width, sha256 };
  } catch (err) {
    if (err instanceof EmbeddingError) throw new EmbeddingError(`embedding ${fileName}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** The embedding files directly in `dir` (names only, sorted); a missing or unlistable folder is a usage error. */
export function listEmbeddingFiles(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => !e.isDirectory() && (EMBEDDING_EXTENSIONS as readonly string[]).includes(extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'it is a file, not a folder' : (err as Error).message;
    throw new UsageError(`--embeddings-dir: cannot list ${dir}: ${why}`, { cause: err });
  }
}

/** Is the embedding `file` named in one of these prompts? Its trigger is its file name, matched as the tokenizer sees it (case-insensitively). */
export function namedIn(file: string, prompts: readonly string[]): boolean {
  const name = basename(file, extname(file)).toLowerCase();
  return name !== '' && prompts.some((p) => p.toLowerCase().includes(name));
}

/**
 * The embeddings of `dir` that `prompts` name (every file when `prompts` is undefined), each checked
 * against the text encoder's width. Only those files are read: a broken file nobody names costs
 * nothing. One that is named but cannot be used is told to `warn` once and left out (its name stays
 * plain text), as is a second file with the same name.
 */
export function readEmbeddingsDir(dir: string, width: number, prompts?: readonly string[], warn?: (message: string) => void): TextualInversion[] {
  const out: TextualInversion[] = [];
  for (const file of listEmbeddingFiles(dir)) {
    if (prompts && !namedIn(file, prompts)) continue;
    try {
      const emb = readEmbedding(join(dir, file));
      checkEmbeddingWidth(emb, width);
      const clash = out.find((e) => e.name === emb.name);
      if (clash) throw new EmbeddingError(`embeddings ${file} and another file are both named '${emb.name}'`);
      out.push(emb);
    } catch (err) {
      if (!warn || !(err instanceof EmbeddingError)) throw err;
      warn(`${err.message}; '${basename(file, extname(file))}' stays plain text`);
    }
  }
  return out;
}

/** The model's hidden width must match, e.g. an SD 2.x (1024) embedding cannot drive SD 1.x (768). */
export function checkEmbeddingWidth(emb: TextualInversion, width: number): void {
  if (emb.width !== width) {
    throw new EmbeddingError(`embedding ${emb.name} has vectors of width ${emb.width}, but this text encoder's hidden width is ${width} (made for another model family)`);
  }
}

function fail(message: string): never {
  throw new EmbeddingError(message);
}

function matrixShape(shape: readonly number[]): { count: number; width: number } {
  const [a, b] = shape;
  const [count, width] = shape.length === 1 ? [1, a!] : shape.length === 2 ? [a!, b!] : fail(`tensor of shape [${shape.join(', ')}] is not [vectors, width]`);
  if (count < 1 || width < 1) fail(`tensor of shape [${shape.join(', ')}] is empty`);
  if (count > MAX_EMBEDDING_VECTORS) fail(`${count} vectors is more than the ${MAX_EMBEDDING_VECTORS} a prompt chunk holds`);
  return { count, width };
}

interface Picked {
  tensor: FloatTensor;
  token?: string;
}

/** emb_params (A1111), else the only tensor (diffusers { token: tensor } or a bare tensor). */
function pickTensor(tensors: Map<string, FloatTensor>): Picked {
  const emb = tensors.get('emb_params');
  if (emb) return { tensor: emb };
  if (tensors.has('clip_l') || tensors.has('clip_g')) fail('SDXL embeddings (clip_l/clip_g) are not supported');
  if (tensors.size !== 1) fail(`expected one tensor or 'emb_params', found ${[...tensors.keys()].map((k) => `'${k}'`).join(', ') || 'none'}`);
  const [token, tensor] = [...tensors][0]!;
  return { tensor, token };
}

function pickFromTorch(value: PickleValue): Picked {
  if (!(value instanceof Map)) fail('the file does not hold a dict');
  const params = value.get('string_to_param');
  if (params !== undefined) {
    // A1111's own fix for torch 1.11 files: the ParameterDict's parameters live in _parameters.
    const dict = params instanceof PickleObject && params.state instanceof Map ? params.state.get('_parameters') : params;
    const tensors = tensorsOf(dict);
    if (!tensors || tensors.size !== 1) fail("'string_to_param' does not hold exactly one tensor");
    return { tensor: [...tensors.values()][0]! };
  }
  const tensors = tensorsOf(value);
  if (!tensors) fail(`unrecognised layout (keys: ${[...value.keys()].map(String).join(', ')})`);
  return pickTensor(tensors);
}

/** A dict whose keys are strings and values tensors, as a Map; undefined for anything else. */
function tensorsOf(value: PickleValue | undefined): Map<string, FloatTensor> | undefined {
  if (!(value instanceof Map)) return undefined;
  const out = new Map<string, FloatTensor>();
  for (const [k, v] of value) {
    if (typeof k !== 'string' || !(v instanceof TorchTensor)) return undefined;
    out.set(k, v);
  }
  return out;
}

/** What the prompt layer needs to place one embedding: its trigger's token ids and the ids it expands to. */
export interface EmbeddingTokens {
  triggerIds: readonly number[];
  ids: readonly number[];
}

/**
 * Replaces each trigger (a run of token ids) by its embedding's ids, scanning left to right and
 * trying the longest trigger first at each position, as A1111's EmbeddingDatabase does.
 */
export function expandEmbeddingTokens(tokens: readonly number[], embeddings: readonly EmbeddingTokens[]): number[] {
  const byLength = embeddings.filter((e) => e.triggerIds.length > 0).sort((a, b) => b.triggerIds.length - a.triggerIds.length);
  const out: number[] = [];
  let i = 0;
  while (i < tokens.length) {
    const hit = byLength.find((e) => e.triggerIds.every((id, j) => tokens[i + j] === id));
    if (hit) {
      out.push(...hit.ids);
      i += hit.triggerIds.length;
    } else {
      out.push(tokens[i]!);
      i++;
    }
  }
  return out;
}
