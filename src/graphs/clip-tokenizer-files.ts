import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/**
 * The tokenizer/ folder a converted model carries: CLIP's BPE (shipped as assets/clip/merges.txt.gz,
 * made by tools/make_clip_asset.py), the vocabulary derived from it as CLIP builds it, and the
 * configs transformers' CLIPTokenizer reads. SD 2.x and SDXL's second tokenizer pad with "!"
 * (id 0), as OpenCLIP's tokenizer does and stabilityai's repos configure; SD 1.x and SDXL's
 * first pad with the end-of-text token.
 */

const MERGES_ASSET = new URL('../../../assets/clip/merges.txt.gz', import.meta.url);
const BOS = '<|startoftext|>';
const EOS = '<|endoftext|>';

/** GPT-2/CLIP's reversible byte -> printable character table, in CLIP's id order. */
function byteCharacters(): string[] {
  const printable = [...range(0x21, 0x7e), ...range(0xa1, 0xac), ...range(0xae, 0xff)];
  const chars = printable.map((b) => String.fromCodePoint(b));
  let extra = 0;
  for (let b = 0; b < 256; b++) if (!printable.includes(b)) chars.push(String.fromCodePoint(256 + extra++));
  return chars;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export function clipMerges(): string {
  return gunzipSync(readFileSync(MERGES_ASSET)).toString('utf8');
}

/** CLIP's vocabulary: the 256 byte characters, the same with `</w>`, one token per merge, then the two specials. */
export function clipVocab(merges: string): Record<string, number> {
  const bytes = byteCharacters();
  const pairs = merges
    .split('\n')
    .slice(1)
    .filter((line) => line.length > 0)
    .map((line) => line.split(' ').join(''));
  const tokens = [...bytes, ...bytes.map((c) => `${c}</w>`), ...pairs, BOS, EOS];
  return Object.fromEntries(tokens.map((t, i) => [t, i]));
}

function special(content: string): Record<string, unknown> {
  return { content, lstrip: false, normalized: true, rstrip: false, single_word: false };
}

/** `pad`: '!' for OpenCLIP's towers (SD 2.x, SDXL's second), 'eos' for CLIP ViT-L's (SD 1.x, SDXL's first). */
export async function writeClipTokenizer(dir: string, pad: '!' | 'eos'): Promise<void> {
  const merges = clipMerges();
  const padToken = pad === '!' ? '!' : EOS;
  const specials = { bos_token: special(BOS), eos_token: special(EOS), pad_token: padToken, unk_token: special(EOS) };
  const config = { ...specials, add_prefix_space: false, do_lower_case: true, errors: 'replace', model_max_length: 77, tokenizer_class: 'CLIPTokenizer' };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'merges.txt'), merges);
  await writeFile(join(dir, 'vocab.json'), JSON.stringify(clipVocab(merges)));
  await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify(specials, null, 2));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
}
