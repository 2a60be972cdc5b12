// Token weights applied to text-encoder hidden states. Hidden states are row-major float32
// [rows, width], one row per token, rows a multiple of 77 (chunks stacked); multipliers has one entry
// per row. Arithmetic is float32 per element as torch does it; the means are summed in float64.
import { CHUNK_TOKENS, type EmphasisMode, type PromptChunk } from './prompt-chunks.js';

/**
 * A1111's emphasis after the text encoder (modules/sd_emphasis.py). "original": z *= weight per token,
 * then z *= mean(z before) / mean(z after), both means over everything passed in; "no-norm": the
 * product alone; "ignore" and "none": unchanged. A1111 takes the means over one chunk index of a whole
 * batch of texts (see weightBatches), not per text.
 */
export function applyEmphasis(hidden: Float32Array, multipliers: ArrayLike<number>, mode: EmphasisMode): Float32Array {
  const width = rowWidth(hidden, multipliers);
  const out = new Float32Array(hidden);
  if (mode === 'ignore' || mode === 'none') return out;
  const originalMean = Math.fround(mean(hidden));
  for (let row = 0; row < multipliers.length; row++) {
    // torch.asarray turns the Python float weights into a float32 tensor.
    const weight = Math.fround(multipliers[row]!);
    for (let i = row * width; i < (row + 1) * width; i++) out[i] = Math.fround(out[i]! * weight);
  }
  if (mode === 'no-norm') return out;
  const scale = Math.fround(originalMean / Math.fround(mean(out)));
  for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! * scale);
  return out;
}

/**
 * ComfyUI's weighting (comfy/sd1_clip.py, encode_token_weights): a token of weight w != 1 becomes
 * (z - z_empty) * w + z_empty, z_empty being the same position in the encoding of the empty prompt
 * (BOS, EOS, then padding: A1111's empty chunk). emptyHidden is that one 77-row chunk.
 */
export function applyComfyWeights(hidden: Float32Array, emptyHidden: Float32Array, multipliers: ArrayLike<number>): Float32Array {
  const width = rowWidth(hidden, multipliers);
  if (emptyHidden.length !== CHUNK_TOKENS * width) throw new RangeError(`empty-prompt hidden states must be ${CHUNK_TOKENS}x${width}`);
  const out = new Float32Array(hidden);
  for (let row = 0; row < multipliers.length; row++) {
    const weight = multipliers[row]!;
    if (weight === 1) continue;
    const w = Math.fround(weight);
    const emptyRow = (row % CHUNK_TOKENS) * width;
    for (let c = 0; c < width; c++) {
      const e = emptyHidden[emptyRow + c]!;
      out[row * width + c] = Math.fround(Math.fround(Math.fround(out[row * width + c]! - e) * w) + e);
    }
  }
  return out;
}

/** One text-encoder call of A1111's forward(): chunk i of every text, and the hidden states it gave. */
export interface EncodedBatch {
  chunks: readonly PromptChunk[];
  /** [chunks.length * 77, width]: the encoder output of those chunks, in order. */
  hidden: Float32Array;
}

/**
 * A1111's forward() after the encoder: emphasis per batch (means over the whole batch), then each
 * text's chunks side by side. Returns one [chunkCount * 77, width] array per text.
 */
export function weightBatches(batches: readonly EncodedBatch[], mode: EmphasisMode): Float32Array[] {
  const texts = batches[0]?.chunks.length ?? 0;
  const weighted = batches.map((batch) => applyEmphasis(batch.hidden, batch.chunks.flatMap((chunk) => chunk.multipliers), mode));
  const perChunk = (weighted[0]?.length ?? 0) / Math.max(texts, 1);
  return Array.from({ length: texts }, (_, t) => {
    const out = new Float32Array(perChunk * batches.length);
    weighted.forEach((batch, i) => out.set(batch.subarray(t * perChunk, (t + 1) * perChunk), i * perChunk));
    return out;
  });
}

function rowWidth(hidden: Float32Array, multipliers: ArrayLike<number>): number {
  const rows = multipliers.length;
  if (rows === 0 || hidden.length % rows !== 0) throw new RangeError(`${hidden.length} hidden values do not split into ${rows} token rows`);
  return hidden.length / rows;
}

function mean(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}
