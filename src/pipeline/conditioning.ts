import { expandEmbeddingTokens } from '../text/embeddings.js';
import { batchChunks, CHUNK_TOKENS, encoderInputIds, emptyChunk, tokenizeLine, type ChunkTokenIds } from '../text/prompt-chunks.js';
import { promptSchedule } from '../text/prompt-schedule.js';
import { applyComfyWeights, weightBatches } from '../text/prompt-weights.js';
import type { ModelBundle } from './bundle.js';
import type { Conditioning } from './text-encoder.js';
import type { PromptWeighting } from './types.js';

/** A prompt's conditioning over the run: A1111 switches per denoiser call for edited prompts. */
export interface ScheduledConditioning {
  at(call: number): Conditioning;
  /** Distinct texts encoded (an edited prompt has several). */
  texts: number;
}

function chunkIds(bundle: ModelBundle): ChunkTokenIds {
  const { tokenizer } = bundle;
  return { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.padTokenId, comma: tokenizer.encode(',')[0] };
}

export async function encodeConditioning(bundle: ModelBundle, prompt: string, steps: number, weighting: PromptWeighting): Promise<ScheduledConditioning> {
  const { tokenizer, textEncoder } = bundle;
  if (weighting === 'none') {
    const ids = tokenizer.tokenize(prompt).ids;
    const expanded = bundle.embeddings.length ? withEmbeddings(bundle, ids) : ids;
    const cond = await textEncoder.encode(expanded);
    return { at: () => cond, texts: 1 };
  }
  const ids = chunkIds(bundle);
  const encoder = { encode: (text: string) => expandEmbeddingTokens(tokenizer.encode(text), bundle.embeddings) };
  const schedule = promptSchedule(prompt, steps);
  const lines = schedule.map((entry) => tokenizeLine(entry.text, encoder, ids));
  const batches = await Promise.all(
    batchChunks(lines, ids).map(async (chunks) => {
      const encoded = await Promise.all(chunks.map((chunk) => textEncoder.encode(encoderInputIds(chunk, ids))));
      const width = encoded[0]!.width;
      const hidden = new Float32Array(encoded.length * CHUNK_TOKENS * width);
      encoded.forEach((e, i) => hidden.set(e.data, i * CHUNK_TOKENS * width));
      return { chunks, hidden, width };
    }),
  );
  const width = batches[0]!.width;
  let perText: Float32Array[];
  if (weighting === 'comfy') {
    const empty = (await textEncoder.encode(encoderInputIds(emptyChunk(ids), ids))).data;
    perText = schedule.map((_, t) => {
      const out = new Float32Array(batches.length * CHUNK_TOKENS * width);
      batches.forEach((b, i) => {
        const one = b.hidden.subarray(t * CHUNK_TOKENS * width, (t + 1) * CHUNK_TOKENS * width);
        out.set(applyComfyWeights(one, empty, b.chunks[t]!.multipliers), i * CHUNK_TOKENS * width);
      });
      return out;
    });
  } else {
    perText = weightBatches(batches, 'original');
  }
  const conds: Conditioning[] = perText.map((data) => ({ data, tokens: data.length / width, width }));
  // A1111 (prompt_parser.reconstruct_cond_batch) conditions denoiser call n, counted from 0 (CFGDenoiser.step),
  // on the first text with n <= endStep: a text is still used at the call numbered its endStep.
  return {
    at: (call) => {
      const i = schedule.findIndex((e) => call <= e.endStep);
      return conds[i === -1 ? conds.length - 1 : i]!;
    },
    texts: schedule.length,
  };
}

/** diffusers-style ids with embedding triggers replaced, kept at the window's length. */
function withEmbeddings(bundle: ModelBundle, ids: readonly number[]): number[] {
  const { eosTokenId, bosTokenId } = bundle.tokenizer;
  const body = ids.slice(1, ids.indexOf(eosTokenId) === -1 ? ids.length : ids.indexOf(eosTokenId));
  const expanded = expandEmbeddingTokens(body, bundle.embeddings).slice(0, ids.length - 2);
  return [bosTokenId, ...expanded, eosTokenId, ...new Array<number>(ids.length - 2 - expanded.length).fill(bundle.tokenizer.padTokenId)];
}
