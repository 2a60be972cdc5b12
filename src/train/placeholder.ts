import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import { MAX_EMBEDDING_VECTORS } from '../text/embeddings.js';
import { TrainInputError } from './errors.js';
import { PLACEHOLDER } from './templates.js';

/**
 * The learned token as diffusers' script adds it: the token and, for more vectors, token_1 …
 * token_{n−1}, each a new id after the vocabulary, written into prompts side by side. The text
 * encoder here takes embeddings fed from JS, so the new ids never reach the graph: they index
 * the learned rows.
 */

export interface Placeholder {
  token: string;
  /** The new ids, vocab … vocab + vectors − 1 (diffusers' tokenizer.add_tokens gives the same). */
  ids: number[];
}

/** A1111 names the embedding after its file, and the file after the token. */
const FILE_NAME_UNSAFE = /[\u0000-\u001f/\\:*?"<>|]/;

/** Refuses a token diffusers' script would refuse (already in the vocabulary) or a file name cannot hold. */
export function checkPlaceholderToken(tokenizer: ClipTokenizer, token: string, vectors: number): void {
  if (token.trim() === '' || token !== token.trim() || /\s/.test(token)) throw new TrainInputError(`--token '${token}': the token must be one word without spaces (e.g. <my-cat>)`);
  if (FILE_NAME_UNSAFE.test(token) && !/^<[^<>]+>$/.test(token)) throw new TrainInputError(`--token '${token}' has characters a file name cannot hold; the embedding is saved as <token>.safetensors`);
  if (!Number.isInteger(vectors) || vectors < 1 || vectors > MAX_EMBEDDING_VECTORS) throw new TrainInputError(`--vectors must be from 1 to ${MAX_EMBEDDING_VECTORS} (got ${vectors})`);
  const names = [token, ...Array.from({ length: vectors - 1 }, (_, i) => `${token}_${i + 1}`)];
  for (const name of names) {
    const key = name.toLowerCase();
    if (tokenizer.hasToken(key) || tokenizer.hasToken(`${key}</w>`)) {
      throw new TrainInputError(`--token '${token}': the tokenizer already contains the token ${name}; pick a word it does not know (e.g. <${token.replace(/[<>]/g, '')}-ti>)`);
    }
  }
}

export function placeholderFor(token: string, vectors: number, vocab: number): Placeholder {
  return { token, ids: Array.from({ length: vectors }, (_, i) => vocab + i) };
}

/** The token ids of the initialising text (without BOS/EOS). */
export function initWordIds(tokenizer: ClipTokenizer, initWord: string): number[] {
  const ids = tokenizer.encode(initWord);
  if (ids.length === 0) throw new TrainInputError(`--init-word '${initWord}' has no tokens; give a word close to what the pictures show (e.g. cat)`);
  return ids;
}

/**
 * The starting vectors, as A1111's create_embedding: vector i copies the init text's token
 * i · k // n (k tokens, n vectors). For one token that is diffusers' rule (every vector a copy of
 * the initializer token's row).
 */
export function initialVectors(table: Float32Array, width: number, initIds: readonly number[], vectors: number): Float32Array {
  const out = new Float32Array(vectors * width);
  for (let i = 0; i < vectors; i++) {
    const id = initIds[Math.floor((i * initIds.length) / vectors)]!;
    out.set(table.subarray(id * width, (id + 1) * width), i * width);
  }
  return out;
}

/**
 * A caption with the placeholder marked → BOS, ids, EOS, padding to the model's length, as
 * diffusers' tokenizer(text, padding="max_length", truncation=True) gives once the placeholder
 * tokens are added (added tokens split the text; each piece is tokenised on its own).
 */
export function captionIds(tokenizer: ClipTokenizer, caption: string, placeholder: Placeholder): number[] {
  const body: number[] = [];
  caption.split(PLACEHOLDER).forEach((piece, i) => {
    if (i > 0) body.push(...placeholder.ids);
    body.push(...tokenizer.encode(piece));
  });
  const length = tokenizer.modelMaxLength;
  const kept = body.slice(0, length - 2);
  const ids = [tokenizer.bosTokenId, ...kept, tokenizer.eosTokenId];
  while (ids.length < length) ids.push(tokenizer.padTokenId);
  return ids;
}
