/** A term's place in a ranking: its index in the list and its score. */
export interface Ranked {
  index: number;
  score: number;
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** The `count` best scores, best first; equal scores keep the list's order. */
function top(scores: readonly number[], count: number): Ranked[] {
  return scores
    .map((score, index) => ({ index, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, Math.min(count, scores.length));
}

/**
 * A1111's InterrogateModels.rank for one picture: softmax over the list of 100 x the cosine of the picture's and
 * each term's features, the `count` most probable. Scores are the probabilities (A1111 multiplies by 100 and
 * prints score/100).
 */
export function softmaxRank(image: Float32Array, terms: readonly Float32Array[], count: number): Ranked[] {
  const logits = terms.map((t) => 100 * dot(image, t));
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return top(exps.map((e) => e / sum), count);
}

/** clip-interrogator's LabelTable.rank: the `count` highest cosines of the picture's and the terms' features. */
export function cosineRank(image: Float32Array, terms: readonly Float32Array[], count: number): Ranked[] {
  return top(terms.map((t) => dot(image, t)), count);
}

/**
 * clip-interrogator's _truncate_to_fit: the comma-separated parts kept while the prompt stays under CLIP's 77
 * tokens (it measures the text so far and the next part without their ", ", as it does).
 */
export function truncateToFit(text: string, tokenCount: (text: string) => number, context: number): string {
  const [first = '', ...rest] = text.split(', ');
  let kept = first;
  for (const part of rest) {
    if (tokenCount(kept + part) >= context) break;
    kept += `, ${part}`;
  }
  return kept;
}

/**
 * A1111's `({term}:{score/100:.3f})` with its float32 arithmetic (score = probability x 100) and Python's rounding:
 * a value exactly halfway (only multiples of 1/16 with an odd numerator are, in binary) rounds to even.
 */
export function rankWeight(probability: number): string {
  const x = Math.fround(Math.fround(Math.fround(probability) * 100) / 100);
  const sixteenths = x * 16;
  if (Number.isInteger(sixteenths) && sixteenths % 2 !== 0) {
    const thousandths = x * 1000;
    const down = Math.floor(thousandths);
    return ((down % 2 === 0 ? down : down + 1) / 1000).toFixed(3);
  }
  return x.toFixed(3);
}
