// The text clean-up CLIPTokenizer applies before its regex when ftfy is not installed (the usual
// diffusers setup): transformers' BasicTokenizer(strip_accents=False, do_split_on_punc=False)
// followed by " ".join(...). Character classes follow Python's unicodedata / str semantics.

// BasicTokenizer._clean_text drops NUL, U+FFFD and every Python category "C*" character (control,
// format, surrogate, private use, unassigned) except \t \n \r, which it counts as whitespace.
const DROPPED = /(?![\t\n\r])\p{C}|\ufffd/gu;
const BERT_WHITESPACE = /[\t\n\r\p{Zs}]/gu;
// The CJK Unified Ideographs blocks BERT surrounds with spaces (not kana, not Hangul).
const CJK_IDEOGRAPH =
  /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u{20000}-\u{2a6df}\u{2a700}-\u{2b73f}\u{2b740}-\u{2b81f}\u{2b820}-\u{2ceaf}\u{2f800}-\u{2fa1f}]/gu;
// Python's str.split()/str.strip() whitespace (str.isspace), which is wider than JS \s
// (it adds \x1c-\x1f and \x85, and lacks \ufeff).
const PYTHON_WHITESPACE = String.raw`[\t\n\v\f\r\x1c-\x1f \x85\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+`;
const PYTHON_WHITESPACE_RUN = new RegExp(PYTHON_WHITESPACE, 'u');
const PYTHON_WHITESPACE_EDGES = new RegExp(`^${PYTHON_WHITESPACE}|${PYTHON_WHITESPACE}$`, 'gu');

/** Python's str.strip() with no argument. */
export function pythonStrip(text: string): string {
  return text.replace(PYTHON_WHITESPACE_EDGES, '');
}

/** Python's str.split() with no argument. */
function pythonSplit(text: string): string[] {
  return text.split(PYTHON_WHITESPACE_RUN).filter((part) => part.length > 0);
}

/**
 * The string CLIPTokenizer runs its regex over: cleaned, NFC-normalised, whitespace-collapsed and
 * lowercased (per whitespace-separated word, as Python does, so final-sigma context stays per word).
 * Accents are kept.
 */
export function normalizeClipText(text: string): string {
  // The /u regexes walk code points like Python does: a lone surrogate is one Cs code point, dropped.
  const cleaned = text.replace(DROPPED, '').replace(BERT_WHITESPACE, ' ').replace(CJK_IDEOGRAPH, ' $& ');
  const words = pythonSplit(cleaned.normalize('NFC'));
  return words.map((word) => word.toLowerCase()).join(' ');
}
