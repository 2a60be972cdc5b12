// Byte-level BPE as in CLIP / GPT-2: UTF-8 bytes are mapped to printable characters, then merged
// by rank, with "</w>" marking the end of each pre-tokenised word.

const END_OF_WORD = '</w>';

/** byte value -> the printable character standing for it (CLIP's / GPT-2's reversible table). */
function buildByteToChar(): string[] {
  const table: string[] = new Array(256);
  const isPrintable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(isPrintable(b) ? b : 256 + extra++);
  }
  return table;
}

const BYTE_TO_CHAR: readonly string[] = buildByteToChar();
const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** A word's UTF-8 bytes as BPE symbols, one character per byte. */
function bytesToSymbols(word: string): string {
  let out = '';
  for (const byte of utf8Encoder.encode(word)) out += BYTE_TO_CHAR[byte];
  return out;
}

/** Inverse of bytesToSymbols; invalid UTF-8 becomes U+FFFD (Python's errors="replace"). */
export function symbolsToText(symbols: string): string {
  const bytes = new Uint8Array(symbols.length);
  for (let i = 0; i < symbols.length; i++) {
    const byte = CHAR_TO_BYTE.get(symbols[i]!);
    if (byte === undefined) throw new Error(`not a byte-level BPE symbol: ${JSON.stringify(symbols[i])}`);
    bytes[i] = byte;
  }
  return utf8Decoder.decode(bytes);
}

// A merge pair as one map key; symbols never contain spaces (space is a mapped byte).
const pairKey = (first: string, second: string): string => `${first} ${second}`;

/**
 * Parses merges.txt the way CLIPTokenizer does: strip, split lines, skip the "#version" header and
 * keep at most `maxMerges` lines; a line's index is its rank.
 */
export function parseMerges(text: string, maxMerges: number): Map<string, number> {
  const lines = text.trim().split('\n');
  const ranks = new Map<string, number>();
  const end = Math.min(lines.length, 1 + maxMerges);
  for (let i = 1; i < end; i++) {
    const parts = lines[i]!.trim().split(/\s+/);
    // Python keeps malformed lines as tuples that can never equal a pair: they only use up a rank.
    // A repeated pair takes its last rank, as in Python's dict(zip(merges, ranks)).
    if (parts.length === 2) ranks.set(pairKey(parts[0]!, parts[1]!), i - 1);
  }
  return ranks;
}

export class BytePairEncoder {
  // Prompts repeat words a lot ("masterpiece, best quality, ..."): merging is the costly step.
  private readonly cache = new Map<string, readonly number[]>();

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly ranks: ReadonlyMap<string, number>,
    private readonly unkId: number,
    /** Words (all printable ASCII) that map to one vocabulary entry as they are, without "</w>": CLIP pre-fills its cache with its specials. */
    verbatimWords: readonly string[],
  ) {
    for (const word of verbatimWords) this.cache.set(word, [this.idOf(word)]);
  }

  /** Ids for one pre-tokenised word. */
  encode(word: string): readonly number[] {
    // Keyed by the word rather than its byte symbols (as Python does): the mapping is one-to-one and
    // a cache hit then skips the UTF-8 encoding too.
    let ids = this.cache.get(word);
    if (ids === undefined) {
      ids = this.merge(bytesToSymbols(word)).map((piece) => this.idOf(piece));
      this.cache.set(word, ids);
    }
    return ids;
  }

  private idOf(piece: string): number {
    return this.vocab.get(piece) ?? this.unkId;
  }

  private merge(symbols: string): string[] {
    let word = Array.from(symbols);
    word[word.length - 1] += END_OF_WORD;
    while (word.length > 1) {
      let bestRank = Infinity;
      let bestIndex = -1;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(pairKey(word[i]!, word[i + 1]!));
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestIndex = i;
        }
      }
      if (bestIndex < 0) break;
      const first = word[bestIndex]!;
      const second = word[bestIndex + 1]!;
      // Merge every non-overlapping occurrence of the best pair, left to right.
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i]!);
        }
      }
      word = merged;
    }
    return word;
  }
}
