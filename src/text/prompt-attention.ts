// Emphasis syntax, as A1111's parse_prompt_attention: "(x)" multiplies the weight of x by 1.1, "[x]"
// divides it by 1.1, "(x:1.3)" multiplies it by 1.3, "\(" "\)" "\[" "\]" "\\" are literal characters,
// unclosed brackets apply to the end of the prompt, and BREAK (a whole word, outside brackets) starts a
// new 75-token chunk. The weights are computed with the same float64 operations in the same order, so
// they equal A1111's exactly, quirks included: a BREAK inside brackets has its marker weight multiplied
// and is then just the word "BREAK" with a negative weight.
import { PromptError } from './prompt-error.js';
import { PY_DIGIT, PY_SPACE, PY_WORD, pythonFloatOfDecimal } from './prompt-python-chars.js';

export interface WeightedText {
  text: string;
  weight: number;
}

/** A1111 marks a BREAK with this entry; only the exact pair (text "BREAK", weight -1) counts as one. */
export const BREAK_MARKER: Readonly<WeightedText> = { text: 'BREAK', weight: -1 };

export function isBreak(part: WeightedText): boolean {
  return part.text === BREAK_MARKER.text && part.weight === BREAK_MARKER.weight;
}

const ROUND_MULTIPLIER = 1.1;
const SQUARE_MULTIPLIER = 1 / 1.1;

// re_attention, alternative for alternative; group 1 is the explicit weight of "(x:w)".
const ATTENTION = new RegExp(
  [
    '\\\\\\(', '\\\\\\)', '\\\\\\[', '\\\\\\]', '\\\\\\\\', '\\\\', '\\(', '\\[',
    `:[${PY_SPACE}]*([+-]?[.${PY_DIGIT}]+)[${PY_SPACE}]*\\)`,
    '\\)', '\\]', '[^\\\\()\\[\\]:]+', ':',
  ].join('|'),
  'gu',
);
// re_break: \s*\bBREAK\b\s* with Python's Unicode word boundaries.
const BREAK = new RegExp(`[${PY_SPACE}]*(?<![${PY_WORD}])BREAK(?![${PY_WORD}])[${PY_SPACE}]*`, 'u');

export function parsePromptAttention(prompt: string): WeightedText[] {
  const res: WeightedText[] = [];
  const roundBrackets: number[] = [];
  const squareBrackets: number[] = [];
  const multiplyFrom = (start: number, multiplier: number): void => {
    for (let i = start; i < res.length; i++) res[i]!.weight *= multiplier;
  };

  for (const match of prompt.matchAll(ATTENTION)) {
    const text = match[0];
    const weight = match[1];
    if (text.startsWith('\\')) {
      res.push({ text: text.slice(1), weight: 1 });
    } else if (text === '(') {
      roundBrackets.push(res.length);
    } else if (text === '[') {
      squareBrackets.push(res.length);
    } else if (weight !== undefined && roundBrackets.length > 0) {
      const value = pythonFloatOfDecimal(weight);
      // float() raises ValueError in A1111 for e.g. "(x:1.2.3)".
      if (value === undefined) throw new PromptError(`prompt weight "${weight}" is not a number`);
      multiplyFrom(roundBrackets.pop()!, value);
    } else if (text === ')' && roundBrackets.length > 0) {
      multiplyFrom(roundBrackets.pop()!, ROUND_MULTIPLIER);
    } else if (text === ']' && squareBrackets.length > 0) {
      multiplyFrom(squareBrackets.pop()!, SQUARE_MULTIPLIER);
    } else {
      text.split(BREAK).forEach((part, i) => {
        if (i > 0) res.push({ ...BREAK_MARKER });
        res.push({ text: part, weight: 1 });
      });
    }
  }
  for (const start of roundBrackets) multiplyFrom(start, ROUND_MULTIPLIER);
  for (const start of squareBrackets) multiplyFrom(start, SQUARE_MULTIPLIER);
  if (res.length === 0) res.push({ text: '', weight: 1 });

  // Neighbours with equal weights are merged (a BREAK marker too, if its neighbour weighs exactly -1).
  for (let i = 0; i + 1 < res.length; ) {
    if (res[i]!.weight === res[i + 1]!.weight) {
      res[i]!.text += res[i + 1]!.text;
      res.splice(i + 1, 1);
    } else {
      i++;
    }
  }
  return res;
}
