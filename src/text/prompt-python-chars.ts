// Character classes of Python's `re` on str patterns, which A1111's prompt regexes rely on. JS's own
// \s, \d and \b differ: Python's \s has U+001C-U+001F and U+0085 but not U+FEFF, its \d is every
// Unicode decimal digit, and its \b/\w count any Unicode letter or number as a word character.

/** Body of a character class equal to Python's `\s` (str.isspace). */
export const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Body of a character class equal to Python's `\w` (alphanumerics per str.isalnum, and "_"); use with the u flag. */
export const PY_WORD = '\\p{L}\\p{N}_';
/** Body of a character class equal to Python's `\d` (Unicode decimal digits); use with the u flag. */
export const PY_DIGIT = '\\p{Nd}';

const DECIMAL_DIGIT = /\p{Nd}/u;

/**
 * Python's float() on a string of [+-.] and Unicode decimal digits; undefined where Python raises
 * ValueError. Unicode digits count like ASCII ones: Nd code points come in runs of ten from zero.
 */
export function pythonFloatOfDecimal(text: string): number | undefined {
  let ascii = '';
  for (const char of text) {
    if (DECIMAL_DIGIT.test(char)) ascii += String(digitValue(char));
    else ascii += char;
  }
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(ascii)) return undefined;
  return Number(ascii);
}

function digitValue(char: string): number {
  let start = char.codePointAt(0)!;
  while (DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (char.codePointAt(0)! - start) % 10;
}
