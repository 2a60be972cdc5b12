// A1111's prompt chunking (FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line): the weighted parts of a
// prompt are tokenized and laid out in chunks of 75 tokens, each sent to the text encoder as
// BOS + 75 tokens + EOS (77), padded with EOS. A BREAK closes the current chunk. When a chunk fills
// up and a comma was among its last `commaPaddingBacktrack` tokens, everything after that comma moves
// to the next chunk, so that phrases are not cut in two.
import { isBreak, parsePromptAttention, type WeightedText } from './prompt-attention.js';

/** Prompt tokens per chunk; A1111's chunk_length. */
export const CHUNK_LENGTH = 75;
/** Tokens per chunk as the text encoder sees them: BOS + 75 + EOS. */
export const CHUNK_TOKENS = CHUNK_LENGTH + 2;

/** How A1111 reads emphasis (its "Emphasis mode" setting); only "none" leaves the brackets as text. */
export type EmphasisMode = 'original' | 'no-norm' | 'ignore' | 'none';

export interface ChunkTokenizer {
  /** Token ids of a text without BOS/EOS and without truncation. */
  encode(text: string): number[];
}

export interface ChunkTokenIds {
  bos: number;
  eos: number;
  /**
   * What follows the first EOS of a chunk when it is encoded. SD1's CLIP pads with EOS (A1111's
   * id_pad = id_end); SD2 and SDXL's OpenCLIP encoder pad with 0.
   */
  pad: number;
  /** Id of ",</w>"; A1111 turns the comma backtracking off when the vocabulary has none. */
  comma: number | undefined;
}

export interface ChunkOptions {
  /** A1111's comma_padding_backtrack (default 20); 0 turns it off. */
  commaPaddingBacktrack?: number;
  /** A1111's emphasis setting (default "original"). */
  emphasis?: EmphasisMode;
}

export interface PromptChunk {
  /** CHUNK_TOKENS ids, BOS first; padded with EOS as A1111 keeps them (see encoderInputIds). */
  tokens: number[];
  /** One weight per token; 1 for BOS, EOS and padding. */
  multipliers: number[];
  /** How many of the 75 slots hold prompt tokens (the rest is EOS padding). */
  used: number;
}

export interface TokenizedLine {
  chunks: PromptChunk[];
  /** A1111's token count (the counter in its UI): 75 per full chunk plus the tokens of the last. */
  tokenCount: number;
}

export const DEFAULT_COMMA_PADDING_BACKTRACK = 20;

/** The weighted parts A1111 tokenizes: the parsed emphasis, or the whole line when emphasis is off. */
export function weightedParts(line: string, emphasis: EmphasisMode = 'original'): WeightedText[] {
  return emphasis === 'none' ? [{ text: line, weight: 1 }] : parsePromptAttention(line);
}

export function tokenizeLine(line: string, tokenizer: ChunkTokenizer, ids: ChunkTokenIds, options: ChunkOptions = {}): TokenizedLine {
  const backtrack = options.commaPaddingBacktrack ?? DEFAULT_COMMA_PADDING_BACKTRACK;
  const chunks: PromptChunk[] = [];
  let tokens: number[] = [];
  let multipliers: number[] = [];
  let tokenCount = 0;
  let lastComma = -1;

  const closeChunk = (isLast = false): void => {
    tokenCount += isLast ? tokens.length : CHUNK_LENGTH;
    const used = tokens.length;
    while (tokens.length < CHUNK_LENGTH) {
      tokens.push(ids.eos);
      multipliers.push(1);
    }
    chunks.push({ tokens: [ids.bos, ...tokens, ids.eos], multipliers: [1, ...multipliers, 1], used });
    tokens = [];
    multipliers = [];
    lastComma = -1;
  };

  for (const part of weightedParts(line, options.emphasis)) {
    if (isBreak(part)) {
      closeChunk();
      continue;
    }
    for (const token of tokenizer.encode(part.text)) {
      if (token === ids.comma) {
        lastComma = tokens.length;
      } else if (backtrack !== 0 && tokens.length === CHUNK_LENGTH && lastComma !== -1 && tokens.length - lastComma <= backtrack) {
        const keep = lastComma + 1;
        const movedTokens = tokens.slice(keep);
        const movedMultipliers = multipliers.slice(keep);
        tokens = tokens.slice(0, keep);
        multipliers = multipliers.slice(0, keep);
        closeChunk();
        tokens = movedTokens;
        multipliers = movedMultipliers;
      }
      if (tokens.length === CHUNK_LENGTH) closeChunk();
      tokens.push(token);
      multipliers.push(part.weight);
    }
  }
  if (tokens.length > 0 || chunks.length === 0) closeChunk(true);
  return { chunks, tokenCount };
}

/** A1111's empty_chunk: what stands in for a missing chunk of a shorter prompt in a batch. */
export function emptyChunk(ids: ChunkTokenIds): PromptChunk {
  return {
    tokens: [ids.bos, ...new Array<number>(CHUNK_TOKENS - 1).fill(ids.eos)],
    multipliers: new Array<number>(CHUNK_TOKENS).fill(1),
    used: 0,
  };
}

/** The ids fed to the text encoder: after the first EOS every token becomes the pad id (A1111's process_tokens). */
export function encoderInputIds(chunk: PromptChunk, ids: ChunkTokenIds): number[] {
  if (ids.pad === ids.eos) return [...chunk.tokens];
  const end = chunk.tokens.indexOf(ids.eos);
  return chunk.tokens.map((token, i) => (end >= 0 && i > end ? ids.pad : token));
}

/**
 * The chunks of several prompts encoded together, as A1111's forward(): batch i holds chunk i of every
 * prompt, an empty chunk standing in where a prompt has fewer. The prompts A1111 batches are the
 * distinct texts of one prompt's schedule; emphasis normalisation then runs over the whole batch.
 */
export function batchChunks(lines: readonly TokenizedLine[], ids: ChunkTokenIds): PromptChunk[][] {
  const count = Math.max(...lines.map((line) => line.chunks.length));
  return Array.from({ length: count }, (_, i) => lines.map((line) => line.chunks[i] ?? emptyChunk(ids)));
}
