// Reads a Hugging Face CLIPTokenizer directory (as diffusers pipelines ship it) and resolves its
// special and added tokens the way transformers' from_pretrained does.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../errors.js';
import { readInputFile } from '../input-file.js';

export const VOCAB_FILE = 'vocab.json';
export const MERGES_FILE = 'merges.txt';
export const CONFIG_FILE = 'tokenizer_config.json';
export const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';
// Written by older transformers when tokens were added (e.g. textual inversion); optional.
const LEGACY_ADDED_TOKENS_FILE = 'added_tokens.json';

/** A token matched verbatim in the prompt before any normalisation (transformers' AddedToken). */
export interface AddedToken {
  readonly content: string;
  readonly id: number;
  /** Named by a special-token setting (bos, eos, unk, pad, additional): decode(skipSpecialTokens) drops these. */
  readonly special: boolean;
}

export interface TokenizerFiles {
  readonly vocab: ReadonlyMap<string, number>;
  readonly mergesText: string;
  readonly bosToken: string;
  readonly eosToken: string;
  readonly unkToken: string;
  readonly padToken: string;
  /** Every added token, specials included, each content once. */
  readonly addedTokens: readonly AddedToken[];
  readonly modelMaxLength: number;
  readonly cleanUpTokenizationSpaces: boolean;
}

type Json = Record<string, unknown>;

// CLIPTokenizer's constructor defaults, used when a config leaves a token out.
const CLIP_DEFAULTS = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
} as const;
type SpecialKey = keyof typeof CLIP_DEFAULTS;
const SPECIAL_KEYS = Object.keys(CLIP_DEFAULTS) as SpecialKey[];
// transformers leaves model_max_length unbounded when absent; every CLIP text encoder has 77 positions.
const DEFAULT_MODEL_MAX_LENGTH = 77;

/** CLIP's vocab.json is 1.6 MB and merges.txt 0.5 MB; a tokenizer file ten times that is not one. */
const MAX_TOKENIZER_FILE_BYTES = 16 * 2 ** 20;

async function readRequired(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  if (!existsSync(path)) throw new ModelLoadError(`CLIP tokenizer: missing ${name} in ${dir}`);
  return (await readInputFile(path, { label: 'tokenizer', maxBytes: MAX_TOKENIZER_FILE_BYTES, exitCode: 1 })).toString('utf8');
}

async function readOptional(dir: string, name: string): Promise<string | undefined> {
  return existsSync(join(dir, name)) ? readRequired(dir, name) : undefined;
}

/**
 * merges.txt as CLIPTokenizer reads it (the first line is a header; then CLIP_MERGES pairs) must be
 * pairs whose merge is in the vocabulary, as every real CLIP file's are: Python would keep a
 * garbage line as a pair that never matches, silently tokenizing differently.
 */
function checkMerges(text: string, vocab: ReadonlyMap<string, number>, dir: string, count: number): void {
  const lines = text.trim().split('\n');
  const end = Math.min(lines.length, 1 + count);
  for (let i = 1; i < end; i++) {
    const parts = lines[i]!.trim().split(/\s+/);
    if (parts.length !== 2 || !vocab.has(parts[0]! + parts[1]!)) {
      const shown = lines[i]!.length > 40 ? `${lines[i]!.slice(0, 39)}…` : lines[i]!;
      throw new ModelLoadError(`${join(dir, MERGES_FILE)} line ${i + 1} (${JSON.stringify(shown)}) is not a pair whose merge is in ${VOCAB_FILE}: not a CLIP merges file; re-download the model`);
    }
  }
}

/** CLIPTokenizer keeps this many merges whatever merges.txt holds: 49152 tokens less 256 bytes and 2 specials. */
export const CLIP_MERGE_COUNT = 49152 - 256 - 2;

function parseJsonObject(text: string, name: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(`CLIP tokenizer: ${name} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ModelLoadError(`CLIP tokenizer: ${name} must hold a JSON object`);
  }
  return value as Json;
}

/** A token written either as a plain string or as a serialised AddedToken object; rejects flags we do not implement. */
function tokenContent(value: unknown, where: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as Json)['content'] === 'string') {
    const token = value as Json;
    for (const flag of ['lstrip', 'rstrip', 'single_word']) {
      if (token[flag] === true) throw new ModelLoadError(`CLIP tokenizer: ${where} sets ${flag}, which is not supported`);
    }
    return token['content'] as string;
  }
  throw new ModelLoadError(`CLIP tokenizer: ${where} is not a token`);
}

function tokenList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ModelLoadError(`CLIP tokenizer: ${where} must be a list`);
  return value.map((item, i) => tokenContent(item, `${where}[${i}]`));
}

function parseVocab(text: string): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(parseJsonObject(text, VOCAB_FILE))) {
    if (!Number.isInteger(id)) throw new ModelLoadError(`CLIP tokenizer: ${VOCAB_FILE} maps ${JSON.stringify(token)} to a non-integer`);
    vocab.set(token, id as number);
  }
  return vocab;
}

/**
 * Tokens saved by transformers: `added_tokens_decoder` in the config (transformers >= 4.34), or else
 * the legacy added_tokens.json.
 */
function savedAddedTokens(config: Json, legacyAddedTokens: Json | undefined): Array<{ content: string; id: number }> {
  const decoder = config['added_tokens_decoder'];
  if (decoder !== undefined) {
    if (typeof decoder !== 'object' || decoder === null) throw new ModelLoadError(`CLIP tokenizer: ${CONFIG_FILE} added_tokens_decoder is not an object`);
    return Object.entries(decoder as Json).map(([id, token]) => ({
      content: tokenContent(token, `added_tokens_decoder[${id}]`),
      id: Number(id),
    }));
  }
  return Object.entries(legacyAddedTokens ?? {}).map(([content, id]) => ({ content, id: Number(id) }));
}

export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const [vocabText, mergesText, configText, specialMapText] = await Promise.all([
    readRequired(dir, VOCAB_FILE),
    readRequired(dir, MERGES_FILE),
    readRequired(dir, CONFIG_FILE),
    readRequired(dir, SPECIAL_TOKENS_MAP_FILE),
  ]);
  const vocab = parseVocab(vocabText);
  checkMerges(mergesText, vocab, dir, CLIP_MERGE_COUNT);
  const config = parseJsonObject(configText, CONFIG_FILE);
  const specialMap = parseJsonObject(specialMapText, SPECIAL_TOKENS_MAP_FILE);
  // transformers only reads special_tokens_map.json (and added_tokens.json) for configs saved before
  // added_tokens_decoder existed; there the map's entries override the config's.
  const legacy = config['added_tokens_decoder'] === undefined;
  const legacyAddedText = legacy ? await readOptional(dir, LEGACY_ADDED_TOKENS_FILE) : undefined;

  const special = {} as Record<SpecialKey, string>;
  for (const key of SPECIAL_KEYS) {
    const value = (legacy ? specialMap[key] : undefined) ?? config[key] ?? CLIP_DEFAULTS[key];
    special[key] = tokenContent(value, key);
  }
  const additional = tokenList(config['additional_special_tokens'], 'additional_special_tokens');
  if (legacy) {
    for (const token of tokenList(specialMap['additional_special_tokens'], 'additional_special_tokens')) {
      if (!additional.includes(token)) additional.push(token);
    }
  }
  const specialContents = new Set([...SPECIAL_KEYS.map((key) => special[key]), ...additional]);

  const legacyAdded = legacyAddedText === undefined ? undefined : parseJsonObject(legacyAddedText, LEGACY_ADDED_TOKENS_FILE);
  const saved = savedAddedTokens(config, legacyAdded);
  // Special tokens not saved as added tokens are added at construction: vocabulary id if present, else a new id.
  let nextId = Math.max(vocab.size, ...saved.map((token) => token.id + 1));
  for (const content of specialContents) {
    if (!saved.some((token) => token.content === content)) saved.push({ content, id: vocab.get(content) ?? nextId++ });
  }
  // "Special" as transformers' decode(skip_special_tokens) sees it: the token named by a special-token setting.
  const addedTokens = saved.map((token) => ({ ...token, special: specialContents.has(token.content) }));

  const maxLength = config['model_max_length'];
  return {
    vocab,
    mergesText,
    bosToken: special.bos_token,
    eosToken: special.eos_token,
    unkToken: special.unk_token,
    padToken: special.pad_token,
    addedTokens,
    modelMaxLength: typeof maxLength === 'number' ? maxLength : DEFAULT_MODEL_MAX_LENGTH,
    cleanUpTokenizationSpaces: config['clean_up_tokenization_spaces'] === true,
  };
}
