// PNG text chunks (tEXt, zTXt, iTXt): read them all, and insert new ones the way PIL's PngInfo.add_text
// writes them, which is how AUTOMATIC1111 and ComfyUI store generation metadata.
//
// Why hand-written: sharp 0.35 can report text chunks (`metadata().comments`) but decodes Latin-1 tEXt
// as if it were UTF-8 (é comes back as U+FFFD), and it has no API to write text chunks at all.

import { inflateSync } from 'node:zlib';
import { openInputFile, type InputFileOptions } from '../input-file.js';
import { InvalidPngError } from './errors.js';

const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
// Generous for ComfyUI workflows (hundreds of KB) while refusing decompression bombs.
const MAX_INFLATED_TEXT = 16 * 1024 * 1024;
/** Text chunks read from one PNG (A1111 writes one or two, ComfyUI two); a file with more is refused. */
export const MAX_TEXT_CHUNKS = 256;
/** Text read from one PNG in all, after decompression. */
export const MAX_TOTAL_TEXT = 64 * 1024 * 1024;

export type PngTextChunkType = 'tEXt' | 'zTXt' | 'iTXt';

export interface PngTextChunk {
  type: PngTextChunkType;
  keyword: string;
  text: string;
  /** zTXt always; iTXt when its compression flag is set. */
  compressed: boolean;
  /** iTXt only, else ''. */
  languageTag: string;
  /** iTXt only, else ''. */
  translatedKeyword: string;
}

export interface PngTextEntry {
  keyword: string;
  text: string;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 as used by PNG and zlib. Own table because node:zlib's crc32 needs Node >= 20.15 (we support 20.9). */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Where chunks come from: a PNG in memory, or a file read chunk by chunk (only text chunks are read whole). */
interface ByteSource {
  size: number;
  read(position: number, length: number): Buffer;
}

const bufferSource = (png: Buffer): ByteSource => ({ size: png.length, read: (position, length) => png.subarray(position, position + length) });

interface RawChunk {
  type: string;
  /** Offset of the length field; the chunk spans [start, end). */
  start: number;
  end: number;
  length: number;
}

function* chunks(src: ByteSource): Generator<RawChunk> {
  if (src.size < 8 || !PNG_SIGNATURE.every((b, i) => src.read(0, 8)[i] === b)) {
    throw new InvalidPngError('not a PNG file (bad signature)');
  }
  let pos = 8;
  while (pos < src.size) {
    if (pos + 12 > src.size) throw new InvalidPngError(`truncated chunk header at byte ${pos}`);
    const header = src.read(pos, 8);
    const length = header.readUInt32BE(0);
    const end = pos + 12 + length;
    if (length > 0x7fffffff || end > src.size) throw new InvalidPngError(`truncated chunk at byte ${pos}`);
    const type = header.toString('latin1', 4, 8);
    yield { type, start: pos, end, length };
    if (type === 'IEND') return;
    pos = end;
  }
  throw new InvalidPngError('missing IEND chunk');
}

/** A chunk's data, its CRC checked. */
function chunkData(src: ByteSource, chunk: RawChunk): Buffer {
  const whole = src.read(chunk.start + 4, chunk.length + 8);
  const stored = whole.readUInt32BE(chunk.length + 4);
  if (crc32(whole.subarray(0, chunk.length + 4)) !== stored) {
    throw new InvalidPngError(`CRC mismatch in ${chunk.type} chunk at byte ${chunk.start}`);
  }
  return whole.subarray(4, chunk.length + 4);
}

function inflateText(data: Buffer, type: string): Buffer {
  try {
    return inflateSync(data, { maxOutputLength: MAX_INFLATED_TEXT });
  } catch (err) {
    throw new InvalidPngError(`cannot decompress ${type} chunk: ${(err as Error).message}`, { cause: err });
  }
}

function splitAtNul(data: Buffer, from: number, what: string): [Buffer, number] {
  const nul = data.indexOf(0, from);
  if (nul < 0) throw new InvalidPngError(`text chunk without ${what} terminator`);
  return [data.subarray(from, nul), nul + 1];
}

const utf8 = new TextDecoder('utf-8');

function decodeTextChunk(type: PngTextChunkType, data: Buffer): PngTextChunk {
  const [keywordBytes, rest] = splitAtNul(data, 0, 'keyword');
  const keyword = keywordBytes.toString('latin1');
  const base = { type, keyword, languageTag: '', translatedKeyword: '' };
  if (type === 'tEXt') {
    return { ...base, text: data.toString('latin1', rest), compressed: false };
  }
  if (type === 'zTXt') {
    // One method byte (0 = deflate) precedes the zlib stream.
    return { ...base, text: inflateText(data.subarray(rest + 1), type).toString('latin1'), compressed: true };
  }
  if (rest + 2 > data.length) throw new InvalidPngError('truncated iTXt chunk');
  const compressed = data[rest] === 1;
  const [lang, afterLang] = splitAtNul(data, rest + 2, 'language tag');
  const [translated, textStart] = splitAtNul(data, afterLang, 'translated keyword');
  const body = data.subarray(textStart);
  return {
    ...base,
    compressed,
    languageTag: lang.toString('latin1'),
    translatedKeyword: utf8.decode(translated),
    // Invalid UTF-8 becomes U+FFFD (PIL drops such a chunk; keeping what is readable is more useful).
    text: utf8.decode(compressed ? inflateText(body, type) : body),
  };
}

const isTextType = (type: string): type is PngTextChunkType => type === 'tEXt' || type === 'zTXt' || type === 'iTXt';

function readText(src: ByteSource): PngTextChunk[] {
  const out: PngTextChunk[] = [];
  let total = 0;
  for (const chunk of chunks(src)) {
    if (!isTextType(chunk.type)) continue;
    if (out.length === MAX_TEXT_CHUNKS) throw new InvalidPngError(`more than ${MAX_TEXT_CHUNKS} text chunks; a PNG with that many is not read`);
    const decoded = decodeTextChunk(chunk.type, chunkData(src, chunk));
    total += decoded.text.length + decoded.keyword.length;
    if (total > MAX_TOTAL_TEXT) throw new InvalidPngError(`more than ${MAX_TOTAL_TEXT / 2 ** 20} MB of text chunks; a PNG with that much is not read`);
    out.push(decoded);
  }
  return out;
}

/**
 * Every text chunk of a PNG, in file order (before and after IDAT). Throws InvalidPngError on
 * corrupt input, on more than MAX_TEXT_CHUNKS text chunks or MAX_TOTAL_TEXT of text.
 */
export function readPngText(png: Uint8Array): PngTextChunk[] {
  return readText(bufferSource(Buffer.from(png.buffer, png.byteOffset, png.byteLength)));
}

/** A PNG file can be gigabytes of pixels: only its chunk headers and text chunks are read. */
export const MAX_PNG_FILE_BYTES = 2 ** 40;
/** Bytes read at a time while walking a file's chunk headers. */
const WINDOW = 64 * 1024;

/** The same, from a file, reading only chunk headers and text chunks (bounded and regular files only, see input-file.ts). */
export function readPngTextFile(path: string, options: Omit<InputFileOptions, 'maxBytes'>): PngTextChunk[] {
  const file = openInputFile(path, { ...options, maxBytes: MAX_PNG_FILE_BYTES });
  try {
    let windowStart = 0;
    let window: Buffer = Buffer.alloc(0);
    const read = (position: number, length: number): Buffer => {
      if (position >= windowStart && position + length <= windowStart + window.length) {
        return window.subarray(position - windowStart, position - windowStart + length);
      }
      if (length > WINDOW) return file.read(position, length);
      windowStart = position;
      window = file.read(position, WINDOW);
      return window.subarray(0, length);
    };
    return readText({ size: file.size, read });
  } finally {
    file.close();
  }
}

/** keyword -> text, later chunks winning, as PIL's `Image.text` presents them. */
export function pngTextRecord(chunkList: readonly PngTextChunk[]): Record<string, string> {
  const record: Record<string, string> = {};
  for (const c of chunkList) record[c.keyword] = c.text;
  return record;
}

const isLatin1 = (s: string): boolean => !/[^\u0000-\u00ff]/.test(s);

function checkKeyword(keyword: string): void {
  // PNG spec: 1-79 printable Latin-1 bytes, no leading, trailing or doubled spaces.
  if (!/^[\u0021-\u007e\u00a1-\u00ff](?:[\u0021-\u007e\u00a1-\u00ff]| (?! ))*$/.test(keyword) || keyword.length > 79 || keyword.endsWith(' ')) {
    throw new RangeError(`invalid PNG text keyword ${JSON.stringify(keyword)}`);
  }
}

function frameChunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(data.length + 12);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * One complete chunk (length, type, data, CRC) exactly as PIL's PngInfo.add_text(keyword, text) encodes it:
 * uncompressed tEXt when the text is Latin-1, else uncompressed iTXt (UTF-8, empty language and translated keyword).
 */
export function encodePngTextChunk({ keyword, text }: PngTextEntry): Buffer {
  checkKeyword(keyword);
  const key = Buffer.from(keyword, 'latin1');
  if (isLatin1(text)) {
    return frameChunk('tEXt', Buffer.concat([key, Buffer.of(0), Buffer.from(text, 'latin1')]));
  }
  // keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL
  return frameChunk('iTXt', Buffer.concat([key, Buffer.of(0, 0, 0, 0, 0), Buffer.from(text, 'utf8')]));
}

/**
 * A copy of `png` carrying `entries` as text chunks. Existing text chunks with the same keywords are removed
 * (a second "parameters" chunk would leave readers guessing). New chunks go just before the first IDAT,
 * where PIL puts them: readers that stop at the image data (PIL's `Image.open(...).info` before `load()`,
 * A1111's PNG-info API) still see them.
 */
export function insertPngText(png: Uint8Array, entries: readonly PngTextEntry[]): Buffer {
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  const replaced = new Set(entries.map((e) => e.keyword));
  const encoded = entries.map(encodePngTextChunk);
  const parts: Buffer[] = [buf.subarray(0, 8)];
  let inserted = false;
  const src = bufferSource(buf);
  for (const chunk of chunks(src)) {
    if (chunk.type === 'IDAT' && !inserted) {
      parts.push(...encoded);
      inserted = true;
    }
    if (isTextType(chunk.type) && replaced.has(decodeKeyword(buf.subarray(chunk.start + 8, chunk.end - 4)))) continue;
    parts.push(buf.subarray(chunk.start, chunk.end));
  }
  if (!inserted) throw new InvalidPngError('PNG has no IDAT chunk');
  return Buffer.concat(parts);
}

function decodeKeyword(data: Buffer): string {
  return splitAtNul(data, 0, 'keyword')[0].toString('latin1');
}
