// BERT's WordPiece tokenizer as transformers' slow BertTokenizer runs it (BLIP's captioner ships one):
// BasicTokenizer (clean, CJK spacing, lower case and accents stripped, punctuation split), then greedy
// longest-match-first WordPiece with "##" continuations; decode skips special tokens, joins "##" pieces
// and applies the config's clean-up. Added tokens typed inside the text are not matched: BLIP's only
// text is its fixed caption prompt.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../errors.js';
import { readInputFileSync } from '../input-file.js';
import { cleanUpTokenization } from './clean-up-tokenization.js';

const MAX_INPUT_CHARS_PER_WORD = 100;
/** BERT's vocab.txt is 232 kB; a file far bigger is not one. */
const MAX_VOCAB_BYTES = 16 * 2 ** 20;
const SPECIAL_KEYS = ['unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token', 'bos_token', 'eos_token'] as const;
type Json = Record<string, unknown>;

export class WordPieceTokenizer {
  readonly clsTokenId: number;
  readonly sepTokenId: number;
  readonly unkTokenId: number;
  private readonly idToToken: ReadonlyMap<number, string>;
  private readonly specialIds: ReadonlySet<number>;

  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    added: ReadonlyMap<number, string>,
    specials: readonly string[],
    private readonly settings: { lowerCase: boolean; stripAccents: boolean; chineseChars: boolean; cleanUp: boolean; unk: string; cls: string; sep: string },
  ) {
    const idToToken = new Map([...vocab].map(([token, id]) => [id, token]));
    for (const [id, token] of added) idToToken.set(id, token);
    this.idToToken = idToToken;
    const tokenToId = new Map([...idToToken].map(([id, token]) => [token, id]));
    const idOf = (token: string): number => {
      const id = tokenToId.get(token);
      if (id === undefined) throw new ModelLoadError(`BERT tokenizer: the special token ${JSON.stringify(token)} is not in the vocabulary`);
      return id;
    };
    this.clsTokenId = idOf(settings.cls);
    this.sepTokenId = idOf(settings.sep);
    this.unkTokenId = idOf(settings.unk);
    this.specialIds = new Set(specials.filter((t) => tokenToId.has(t)).map(idOf));
  }

  /** A tokenizer folder: vocab.txt, tokenizer_config.json / special_tokens_map.json / added_tokens.json when present. */
  static fromDirectory(dir: string): WordPieceTokenizer {
    const vocabPath = join(dir, 'vocab.txt');
    if (!existsSync(vocabPath)) throw new ModelLoadError(`BERT tokenizer: missing vocab.txt in ${dir}`);
    const lines = readInputFileSync(vocabPath, { label: 'tokenizer', maxBytes: MAX_VOCAB_BYTES, exitCode: 1 }).toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    // BertTokenizer's load_vocab: a token per line, its index the id (a repeated token keeps its last index)
    const vocab = new Map(lines.map((token, id) => [token, id]));
    const config = readJson(join(dir, 'tokenizer_config.json'));
    const map = readJson(join(dir, 'special_tokens_map.json'));
    const added = new Map<number, string>();
    for (const [id, value] of Object.entries((config.added_tokens_decoder as Json | undefined) ?? {})) added.set(Number(id), contentOf(value) ?? '');
    for (const [token, id] of Object.entries(readJson(join(dir, 'added_tokens.json')))) if (typeof id === 'number') added.set(id, token);
    const special = (key: string, fallback?: string): string | undefined => contentOf(map[key]) ?? contentOf(config[key]) ?? fallback;
    const extra = ((map.additional_special_tokens ?? config.additional_special_tokens ?? []) as unknown[]).map(contentOf).filter((t): t is string => t !== undefined);
    const specials = [...SPECIAL_KEYS.map((k) => special(k)).filter((t): t is string => t !== undefined), ...extra];
    const lowerCase = config.do_lower_case !== false;
    return new WordPieceTokenizer(vocab, added, specials, {
      lowerCase,
      // BasicTokenizer: strip_accents None follows do_lower_case
      stripAccents: config.strip_accents === undefined || config.strip_accents === null ? lowerCase : config.strip_accents === true,
      chineseChars: config.tokenize_chinese_chars !== false,
      cleanUp: config.clean_up_tokenization_spaces !== false,
      unk: special('unk_token', '[UNK]')!,
      cls: special('cls_token', '[CLS]')!,
      sep: special('sep_token', '[SEP]')!,
    });
  }

  /** [CLS] + the text's ids + [SEP], as the tokenizer's __call__ returns input_ids. */
  encode(text: string): number[] {
    const ids = [this.clsTokenId];
    for (const word of this.basicTokens(text)) ids.push(...this.wordPiece(word));
    ids.push(this.sepTokenId);
    return ids;
  }

  /** decode(ids, skip_special_tokens=True). */
  decode(ids: readonly number[]): string {
    const tokens: string[] = [];
    for (const id of ids) {
      if (this.specialIds.has(id)) continue;
      const token = this.idToToken.get(id);
      if (token === undefined) throw new RangeError(`BERT tokenizer: unknown token id ${id}`);
      tokens.push(token);
    }
    // BertTokenizer.convert_tokens_to_string
    const text = tokens.join(' ').replaceAll(' ##', '').trim();
    return this.settings.cleanUp ? cleanUpTokenization(text) : text;
  }

  private basicTokens(text: string): string[] {
    let clean = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
      const spaced = this.settings.chineseChars && isCjk(cp) ? ` ${ch} ` : ch;
      clean += isWhitespace(ch) ? ' ' : spaced;
    }
    const out: string[] = [];
    for (let token of clean.normalize('NFC').split(/\s+/u).filter((t) => t !== '')) {
      if (this.settings.lowerCase) token = token.toLowerCase();
      if (this.settings.stripAccents) token = token.normalize('NFD').replace(/\p{Mn}/gu, '');
      out.push(...splitOnPunctuation(token));
    }
    return out.join(' ').split(/\s+/u).filter((t) => t !== '');
  }

  private wordPiece(word: string): number[] {
    const chars = Array.from(word);
    if (chars.length > MAX_INPUT_CHARS_PER_WORD) return [this.unkTokenId];
    const ids: number[] = [];
    for (let start = 0; start < chars.length; ) {
      let end = chars.length;
      let found: number | undefined;
      for (; start < end; end--) {
        const piece = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        found = this.vocab.get(piece);
        if (found !== undefined) break;
      }
      if (found === undefined) return [this.unkTokenId];
      ids.push(found);
      start = end;
    }
    return ids;
  }
}

function readJson(path: string): Json {
  if (!existsSync(path)) return {};
  try {
    const value: unknown = JSON.parse(readInputFileSync(path, { label: 'tokenizer', maxBytes: MAX_VOCAB_BYTES, exitCode: 1 }).toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {};
  } catch (err) {
    throw new ModelLoadError(`${path} is not valid JSON (${(err as Error).message}); fix the file or re-download the model`, { cause: err });
  }
}

/** A token setting: a string or an AddedToken object {content: ...}. */
function contentOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return undefined;
}

function isWhitespace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || /\p{Zs}/u.test(ch);
}

function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return /\p{C}/u.test(ch);
}

function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return /\p{P}/u.test(ch);
}

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) || (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** BasicTokenizer._run_split_on_punc: every punctuation character its own token. */
function splitOnPunctuation(token: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const ch of token) {
    if (isPunctuation(ch)) {
      if (current !== '') out.push(current);
      out.push(ch);
      current = '';
    } else current += ch;
  }
  if (current !== '') out.push(current);
  return out;
}
