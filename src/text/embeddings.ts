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
 * - diffusers learned_embeds.bin / .safetensors: { '<token>': [n, dim] or [dim] };
 * - SDXL .safetensors (A1111, kohya): { clip_l: [n, 768], clip_g: [n, 1280] }, one matrix per text
 *   encoder: clip_l goes into CLIP ViT-L (text_encoder), clip_g into OpenCLIP bigG (text_encoder_2).
 * A1111 names an embedding after its file (the trigger word in prompts); diffusers files also
 * carry their own token, kept in `token`.
 */

export const EMBEDDING_EXTENSIONS = ['.safetensors', '.pt', '.bin'] as const;
/** Real embeddings are kilobytes; anything this big is not one, and is not read. */
export const MAX_EMBEDDING_FILE_BYTES = 64 * 1024 * 1024;
/** A1111 refuses embeddings longer than one 75-token prompt chunk. */
export const MAX_EMBEDDING_VECTORS = 75;

/** Vectors for one text encoder's token table: [count, width] row-major float32. */
export interface EmbeddingRows {
  vectors: Float32Array;
  count: number;
  width: number;
}

/** An SD 1.x/2.x embedding's rows are its only matrix; an SDXL one's are clip_l's, with clip_g's in `clipG`. */
export interface TextualInversion extends EmbeddingRows {
  /** The trigger word: the file name without its extension (A1111). */
  name: string;
  /** The token a diffusers file was trained for (e.g. '<cat-toy>'), when it names one. */
  token?: string;
  /** SDXL files: the clip_g matrix (as many vectors as clip_l's) for the second text encoder. */
  clipG?: EmbeddingRows;
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
    const rows = rowsOf(picked.tensor);
    const clipG = picked.clipG ? rowsOf(picked.clipG) : undefined;
    if (clipG && clipG.count !== rows.count) fail(`clip_l holds ${rows.count} vectors but clip_g ${clipG.count}; an SDXL embedding has as many for each text encoder`);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return { name, ...(picked.token !== undefined ? { token: picked.token } : {}), ...rows, ...(clipG ? { clipG } : {}), sha256 };
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
 * against the text encoders' widths (see checkEmbeddingWidth). Only those files are read: a broken file nobody names costs
 * nothing. One that is named but cannot be used is told to `warn` once and left out (its name stays
 * plain text), as is a second file with the same name.
 */
export function readEmbeddingsDir(dir: string, widths: number | readonly number[], prompts?: readonly string[], warn?: (message: string) => void): TextualInversion[] {
  const out: TextualInversion[] = [];
  for (const file of listEmbeddingFiles(dir)) {
    if (prompts && !namedIn(file, prompts)) continue;
    try {
      const emb = readEmbedding(join(dir, file));
      checkEmbeddingWidth(emb, widths);
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

/**
 * The model's text encoders must take the embedding: one hidden width for SD 1.x/2.x (an SD 2.x
 * embedding, 1024, cannot drive SD 1.x, 768), CLIP ViT-L's and bigG's for SDXL, whose files hold a
 * matrix for each (clip_l, clip_g). A1111 skips a file of the other family as these refuse it.
 */
export function checkEmbeddingWidth(emb: TextualInversion, widths: number | readonly number[]): void {
  const [width, width2, ...rest] = typeof widths === 'number' ? [widths] : widths;
  if (width === undefined || rest.length > 0) throw new RangeError(`a model has one or two text encoders, not ${typeof widths === 'number' ? 1 : widths.length}`);
  if (width2 === undefined && emb.clipG) {
    throw new EmbeddingError(`embedding ${emb.name} is an SDXL embedding (clip_l/clip_g), but this is an SD 1.x/2.x model (one text encoder, width ${width}); use it with an SDXL model`);
  }
  if (width2 !== undefined && !emb.clipG) {
    throw new EmbeddingError(`embedding ${emb.name} is an SD 1.x/2.x embedding (one matrix of width ${emb.width}), but this is an SDXL model, which needs clip_l (${width}) and clip_g (${width2}) vectors; use an SDXL embedding`);
  }
  const got = emb.clipG ? `${emb.width} and ${emb.clipG.width}` : `${emb.width}`;
  const want = width2 === undefined ? `${width}` : `${width} and ${width2}`;
  if (emb.width !== width || (width2 !== undefined && emb.clipG!.width !== width2)) {
    throw new EmbeddingError(`embedding ${emb.name} has vectors of width ${got}, but this model's text encoder${width2 === undefined ? "'s hidden width is" : "s' hidden widths are"} ${want} (made for another model family)`);
  }
}

function fail(message: string): never {
  throw new EmbeddingError(message);
}

function rowsOf(tensor: FloatTensor): EmbeddingRows {
  const { count, width } = matrixShape(tensor.shape);
  if (!tensor.data.every(Number.isFinite)) fail('the embedding holds NaN or infinite values');
  return { vectors: tensor.data, count, width };
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
  clipG?: FloatTensor;
}

/** emb_params (A1111), SDXL's clip_l and clip_g, else the only tensor (diffusers { token: tensor } or a bare tensor). */
function pickTensor(tensors: Map<string, FloatTensor>): Picked {
  const emb = tensors.get('emb_params');
  if (emb) return { tensor: emb };
  const clipL = tensors.get('clip_l');
  const clipG = tensors.get('clip_g');
  if (clipL && clipG) return { tensor: clipL, clipG };
  if (clipL || clipG) fail(`an SDXL embedding holds both clip_l and clip_g, this file only ${clipL ? 'clip_l' : 'clip_g'}`);
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
