// CLIP tokenizer matching transformers' slow CLIPTokenizer without ftfy, the one diffusers
// pipelines normally run: added/special tokens are cut out first, the rest is normalised
// (text-normalize.ts), split by CLIP's regex and byte-level BPE encoded (bpe.ts).
import { BytePairEncoder, parseMerges, symbolsToText } from './bpe.js';
import { cleanUpTokenization } from './clean-up-tokenization.js';
import { normalizeClipText, pythonStrip } from './text-normalize.js';
import { CLIP_MERGE_COUNT, readTokenizerFiles, type AddedToken, type TokenizerFiles } from './tokenizer-files.js';

// CLIPTokenizer's pre-filled BPE cache: typed in lowercase, these reach the regex and stay whole.
const CLIP_VERBATIM_WORDS = ['<|startoftext|>', '<|endoftext|>'];
// CLIP's word pattern. Python compiles it with re.IGNORECASE; on lowercased text that still matters
// for characters whose case folding differs, e.g. "'ſ" matches 's, as it does with JS's /iu.
const CLIP_WORD_PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
// U+0345 (combining ypogegrammeni, case-folds to ι) is matched by none of the alternatives in Python's
// `regex` module, so it separates words like a space; JS's /iu would count it as a letter.
const UNMATCHED_BY_PYTHON_REGEX = /\u0345/g;

export interface TokenizeOptions {
  /** Total length including BOS and EOS; defaults to the tokenizer's model_max_length (77). */
  maxLength?: number;
  /** Pad with the pad token up to maxLength (diffusers' padding="max_length"); default true. */
  padding?: boolean;
  /** Keep at most maxLength - 2 prompt tokens; default true. */
  truncation?: boolean;
}

export interface TokenizedPrompt {
  ids: number[];
  /** 1 for BOS, prompt tokens and EOS; 0 for padding. */
  attentionMask: number[];
  /** Whether prompt tokens were dropped to fit maxLength. */
  truncated: boolean;
}

export interface DecodeOptions {
  /** Leave out BOS, EOS, padding and other special tokens; default false. */
  skipSpecialTokens?: boolean;
}

export class ClipTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly modelMaxLength: number;

  private readonly bpe: BytePairEncoder;
  private readonly vocab: ReadonlyMap<string, number>;
  // Built on the first decode: only --explain and debugging need it.
  private idToToken: ReadonlyMap<number, string> | undefined;
  private readonly addedById: ReadonlyMap<number, AddedToken>;
  // Longest first, so that at one position the longest added token wins (transformers' Trie).
  private readonly addedByLength: readonly AddedToken[];
  private readonly cleanUpTokenizationSpaces: boolean;

  static async fromDirectory(dir: string): Promise<ClipTokenizer> {
    return new ClipTokenizer(await readTokenizerFiles(dir));
  }

  constructor(files: TokenizerFiles) {
    this.addedById = new Map(files.addedTokens.map((token) => [token.id, token]));
    // transformers ignores empty added tokens.
    this.addedByLength = files.addedTokens.filter((token) => token.content !== '').sort((a, b) => b.content.length - a.content.length);
    const idOf = (content: string): number => {
      const id = files.addedTokens.find((token) => token.content === content)?.id ?? files.vocab.get(content);
      if (id === undefined) throw new Error(`CLIP tokenizer: token ${JSON.stringify(content)} has no id`);
      return id;
    };
    this.bosTokenId = idOf(files.bosToken);
    this.eosTokenId = idOf(files.eosToken);
    this.padTokenId = idOf(files.padToken);
    this.unkTokenId = idOf(files.unkToken);
    this.modelMaxLength = files.modelMaxLength;
    this.cleanUpTokenizationSpaces = files.cleanUpTokenizationSpaces;
    this.vocab = files.vocab;
    const ranks = parseMerges(files.mergesText, CLIP_MERGE_COUNT);
    this.bpe = new BytePairEncoder(files.vocab, ranks, this.unkTokenId, CLIP_VERBATIM_WORDS);
  }

  /** Whether the vocabulary or the added tokens hold this exact token (e.g. 'cat</w>'). */
  hasToken(token: string): boolean {
    return this.vocab.has(token) || this.addedByLength.some((t) => t.content === token);
  }

  /** Token ids of the prompt, without BOS/EOS and without truncation. */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const part of this.splitOnAddedTokens(text)) {
      if (typeof part !== 'string') {
        ids.push(part.id);
        continue;
      }
      const normalized = normalizeClipText(part).replace(UNMATCHED_BY_PYTHON_REGEX, ' ');
      for (const match of normalized.matchAll(CLIP_WORD_PATTERN)) {
        for (const id of this.bpe.encode(match[0])) ids.push(id);
      }
    }
    return ids;
  }

  /** What a diffusers pipeline feeds the text encoder: BOS + ids (truncated) + EOS, padded. */
  tokenize(text: string, options: TokenizeOptions = {}): TokenizedPrompt {
    const maxLength = options.maxLength ?? this.modelMaxLength;
    const padding = options.padding ?? true;
    const truncation = options.truncation ?? true;
    const body = this.encode(text);
    const room = maxLength - 2;
    const truncated = truncation && body.length > room;
    // transformers logs an error and returns the prompt untruncated when nothing could be kept.
    if (truncated && room <= 0) throw new RangeError(`maxLength ${maxLength} leaves no room for prompt tokens`);
    const kept = truncated ? body.slice(0, room) : body;
    const ids = [this.bosTokenId, ...kept, this.eosTokenId];
    const attentionMask = ids.map(() => 1);
    while (padding && ids.length < maxLength) {
      ids.push(this.padTokenId);
      attentionMask.push(0);
    }
    return { ids, attentionMask, truncated };
  }

  /** Text for ids, as transformers' decode (spaces between special tokens, optional clean-up from the config). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    this.idToToken ??= new Map([...this.vocab].map(([token, id]) => [id, token]));
    const pieces: string[] = [];
    let symbols = '';
    for (const id of ids) {
      const added = this.addedById.get(id);
      if (added?.special && options.skipSpecialTokens) continue;
      if (added !== undefined && !added.special) {
        // Non-special added tokens are kept verbatim, never run through the byte decoder.
        if (symbols !== '') {
          const text = this.symbolsToString(symbols);
          if (text !== '') pieces.push(text);
          symbols = '';
        }
        pieces.push(added.content);
        continue;
      }
      const token = added?.content ?? this.idToToken.get(id);
      if (token === undefined) throw new RangeError(`CLIP tokenizer: unknown token id ${id}`);
      symbols += token;
    }
    if (symbols !== '') pieces.push(this.symbolsToString(symbols));
    const text = pieces.join(' ');
    return this.cleanUpTokenizationSpaces ? cleanUpTokenization(text) : text;
  }

  private symbolsToString(symbols: string): string {
    return pythonStrip(symbolsToText(symbols).replaceAll('</w>', ' '));
  }

  /** Cuts added tokens (BOS, EOS, pad, textual-inversion words...) out of the raw text, leftmost first. */
  private splitOnAddedTokens(text: string): Array<string | AddedToken> {
    const parts: Array<string | AddedToken> = [];
    // Next occurrence of each added token at or after `start` (-1: none left), found again only once passed.
    const next = this.addedByLength.map((token) => text.indexOf(token.content));
    let start = 0;
    for (;;) {
      let best = -1;
      for (let i = 0; i < next.length; i++) {
        if (next[i]! >= 0 && next[i]! < start) next[i] = text.indexOf(this.addedByLength[i]!.content, start);
        // Strictly earlier only: at one position the longer token, seen first, is kept.
        if (next[i]! >= 0 && (best < 0 || next[i]! < next[best]!)) best = i;
      }
      if (best < 0) break;
      const token = this.addedByLength[best]!;
      if (next[best]! > start) parts.push(text.slice(start, next[best]));
      parts.push(token);
      start = next[best]! + token.content.length;
    }
    if (start < text.length) parts.push(text.slice(start));
    return parts;
  }
}
