// What `diffuse prompt --explain` shows: how A1111 would read a prompt — its schedule over the steps,
// and for each scheduled text the weighted parts and the 77-token chunks sent to the text encoder.
import type { WeightedText } from './prompt-attention.js';
import { tokenizeLine, weightedParts, type ChunkOptions, type ChunkTokenIds, type ChunkTokenizer } from './prompt-chunks.js';
import { promptSchedule, scheduleIsAmbiguous } from './prompt-schedule.js';
import { withoutExtraNetworks } from './extra-networks.js';

export interface ExplainTokenizer extends ChunkTokenizer {
  decode(ids: readonly number[]): string;
}

export interface ExplainedToken {
  id: number;
  text: string;
  weight: number;
}

export interface ExplainedText {
  /** First and last sampling step (1-based, inclusive) that use this text. */
  startStep: number;
  endStep: number;
  text: string;
  parts: WeightedText[];
  /** A1111's token count for the text (its UI counter). */
  tokenCount: number;
  /** Prompt tokens of each chunk (BOS, EOS and padding left out). */
  chunks: ExplainedToken[][];
}

export interface PromptExplanation {
  prompt: string;
  steps: number;
  /** A1111 may schedule this prompt differently (stray brackets next to prompt editing). */
  ambiguous: boolean;
  schedule: ExplainedText[];
}

export function explainPrompt(prompt: string, steps: number, tokenizer: ExplainTokenizer, ids: ChunkTokenIds, options: ChunkOptions = {}): PromptExplanation {
  // A1111 uses an entry while the 0-based step is at most its endStep (reconstruct_cond_batch),
  // so in 1-based steps entry i runs from the previous endStep + 2 to its own endStep + 1.
  let startStep = 1;
  // Extra-network tags (<lora:…>) are not text the encoder reads.
  const schedule = promptSchedule(withoutExtraNetworks(prompt), steps).flatMap(({ endStep, text }): ExplainedText[] => {
    const start = startStep;
    const end = Math.min(endStep + 1, steps);
    startStep = endStep + 2;
    if (start > end) return [];
    const line = tokenizeLine(text, tokenizer, ids, options);
    const chunks = line.chunks.map((chunk) => chunk.tokens.slice(1, 1 + chunk.used).map((id, i) => ({
      id,
      text: tokenizer.decode([id]),
      weight: chunk.multipliers[1 + i]!,
    })));
    return [{ startStep: start, endStep: end, text, parts: weightedParts(text, options.emphasis), tokenCount: line.tokenCount, chunks }];
  });
  return { prompt, steps, ambiguous: scheduleIsAmbiguous(prompt), schedule };
}

/** Plain-text lines for a terminal. */
export function formatExplanation(explanation: PromptExplanation): string[] {
  const lines: string[] = [];
  if (explanation.ambiguous) lines.push('note: stray brackets next to prompt editing; AUTOMATIC1111 may read this prompt differently');
  for (const entry of explanation.schedule) {
    const steps = entry.startStep === entry.endStep ? `step ${entry.endStep}` : `steps ${entry.startStep}-${entry.endStep}`;
    lines.push(`${steps} of ${explanation.steps}: ${JSON.stringify(entry.text)} (${entry.tokenCount} tokens, ${entry.chunks.length} chunk${entry.chunks.length === 1 ? '' : 's'})`);
    entry.chunks.forEach((chunk, i) => {
      const tokens = chunk.map((token) => (token.weight === 1 ? token.text : `${token.text}×${formatWeight(token.weight)}`));
      lines.push(`  chunk ${i + 1} (${chunk.length}/75): ${tokens.join(' ')}`);
    });
  }
  return lines;
}

function formatWeight(weight: number): string {
  return String(Number(weight.toPrecision(4)));
}
