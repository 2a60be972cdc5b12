import { expandEmbeddingTokens, type EmbeddingTokens } from '../text/embeddings.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import { batchChunks, CHUNK_TOKENS, encoderInputIds, emptyChunk, tokenizeLine, type ChunkTokenIds } from '../text/prompt-chunks.js';
import { UsageError } from '../errors.js';
import { chunkLimitProblem } from '../text/prompt-limits.js';
import { promptSchedule, type ScheduledPrompt } from '../text/prompt-schedule.js';
import { applyComfyWeights, weightBatches } from '../text/prompt-weights.js';
import type { ModelBundle } from './bundle.js';
import type { Conditioning, EncodedText, TextEncoder } from './text-encoder.js';
import type { PromptWeighting } from './types.js';

/** A prompt's conditioning over the run: A1111 switches per denoiser call for edited prompts. */
export interface ScheduledConditioning {
  at(call: number): Conditioning;
  /** Distinct texts encoded (an edited prompt has several). */
  texts: number;
}

/** One text encoder as the prompt machinery sees it. */
interface Encoder {
  tokenizer: ClipTokenizer;
  textEncoder: TextEncoder;
  embeddings: readonly EmbeddingTokens[];
}

function chunkIds(tokenizer: ClipTokenizer): ChunkTokenIds {
  return { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.padTokenId, comma: tokenizer.encode(',')[0] };
}

/**
 * The prompt's conditioning. SDXL (bundle.sdxl): every text encoder reads the prompt alone, with
 * its own tokenizer, chunks and weighting, and their hidden states are joined per token — as
 * A1111's conditioner runs its two embedders and ComfyUI's SDXL CLIP its clip_l and clip_g —
 * with the last encoder's pooled output of each text's first chunk (A1111's zs[0].pooled,
 * ComfyUI's first_pooled; diffusers' pooled_prompt_embeds for the 'none' window) and `timeIds`
 * as the UNet's added conditioning. `firstPassSteps`: the steps are a hires fix's second pass after a
 * first pass of that many (prompt editing's hires offsets).
 */
export async function encodeConditioning(
  bundle: ModelBundle,
  prompt: string,
  steps: number,
  weighting: PromptWeighting,
  timeIds?: Float32Array,
  firstPassSteps?: number,
): Promise<ScheduledConditioning> {
  const schedule = weighting === 'none' ? [{ endStep: steps, text: prompt }] : promptSchedule(prompt, steps, firstPassSteps);
  const encoders: Encoder[] = bundle.sdxl ? bundle.sdxl.encoders : [{ ...bundle, embeddings: bundle.embeddings }];
  const perEncoder = await Promise.all(encoders.map((e) => encodeTexts(e, schedule, weighting)));
  const conds = bundle.sdxl ? joinEncoders(perEncoder, timeIds ?? new Float32Array(0)) : perEncoder[0]!;
  return scheduled(schedule, conds);
}

/** The same conditioning with every value 0 (diffusers' and A1111's negative for an empty SDXL negative prompt), time ids kept. */
export function zeroedConditioning(like: ScheduledConditioning, timeIds: Float32Array): ScheduledConditioning {
  const zero = (c: Conditioning): Conditioning => ({
    ...c,
    data: new Float32Array(c.data.length),
    ...(c.added ? { added: { textEmbeds: new Float32Array(c.added.textEmbeds.length), timeIds } } : {}),
  });
  return { at: (call) => zero(like.at(call)), texts: like.texts };
}

// A1111 (prompt_parser.reconstruct_cond_batch) conditions denoiser call n, counted from 0 (CFGDenoiser.step),
// on the first text with n <= endStep: a text is still used at the call numbered its endStep.
function scheduled(schedule: readonly ScheduledPrompt[], conds: readonly Conditioning[]): ScheduledConditioning {
  return {
    at: (call) => {
      const i = schedule.findIndex((e) => call <= e.endStep);
      return conds[i === -1 ? conds.length - 1 : i]!;
    },
    texts: schedule.length,
  };
}

/** One encoder's hidden states per text of the schedule (and its pooled output where it has one). */
async function encodeTexts(encoder: Encoder, schedule: readonly ScheduledPrompt[], weighting: PromptWeighting): Promise<EncodedText[]> {
  const { tokenizer, textEncoder } = encoder;
  if (weighting === 'none') {
    const ids = tokenizer.tokenize(schedule[0]!.text).ids;
    return [await textEncoder.encode(encoder.embeddings.length ? withEmbeddings(encoder, ids) : ids)];
  }
  const ids = chunkIds(tokenizer);
  const chunker = { encode: (text: string) => expandEmbeddingTokens(tokenizer.encode(text), encoder.embeddings) };
  const lines = schedule.map((entry) => tokenizeLine(entry.text, chunker, ids));
  const tooLong = chunkLimitProblem(Math.max(...lines.map((line) => line.chunks.length)));
  if (tooLong) throw new UsageError(tooLong);
  const batches = await Promise.all(
    batchChunks(lines, ids).map(async (chunks) => {
      const encoded = await Promise.all(chunks.map((chunk) => textEncoder.encode(encoderInputIds(chunk, ids))));
      const width = encoded[0]!.width;
      const hidden = new Float32Array(encoded.length * CHUNK_TOKENS * width);
      encoded.forEach((e, i) => hidden.set(e.data, i * CHUNK_TOKENS * width));
      return { chunks, hidden, width, pooled: encoded.map((e) => e.pooled) };
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
  return perText.map((data, t) => {
    const pooled = batches[0]!.pooled[t];
    return { data, tokens: data.length / width, width, ...(pooled ? { pooled } : {}) };
  });
}

/** Per text: the encoders' hidden states side by side on every token, the last encoder's pooled output and the time ids. */
function joinEncoders(perEncoder: readonly EncodedText[][], timeIds: Float32Array): Conditioning[] {
  return perEncoder[0]!.map((_, t) => {
    const parts = perEncoder.map((texts) => texts[t]!);
    const tokens = parts[0]!.tokens;
    if (parts.some((p) => p.tokens !== tokens)) {
      throw new Error(`the text encoders read the prompt as ${parts.map((p) => p.tokens).join(' and ')} tokens; SDXL joins them token by token`);
    }
    const width = parts.reduce((n, p) => n + p.width, 0);
    const data = new Float32Array(tokens * width);
    for (let row = 0; row < tokens; row++) {
      let at = row * width;
      for (const p of parts) {
        data.set(p.data.subarray(row * p.width, (row + 1) * p.width), at);
        at += p.width;
      }
    }
    const pooled = parts[parts.length - 1]!.pooled;
    if (!pooled) throw new Error('the last SDXL text encoder gave no pooled output (text_embeds)');
    return { data, tokens, width, added: { textEmbeds: pooled, timeIds } };
  });
}

/** diffusers-style ids with embedding triggers replaced, kept at the window's length. */
function withEmbeddings(encoder: Encoder, ids: readonly number[]): number[] {
  const { eosTokenId, bosTokenId } = encoder.tokenizer;
  const body = ids.slice(1, ids.indexOf(eosTokenId) === -1 ? ids.length : ids.indexOf(eosTokenId));
  const expanded = expandEmbeddingTokens(body, encoder.embeddings).slice(0, ids.length - 2);
  return [bosTokenId, ...expanded, eosTokenId, ...new Array<number>(ids.length - 2 - expanded.length).fill(encoder.tokenizer.padTokenId)];
}
