import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';
import { EmbeddingError } from './embedding-error.js';

/**
 * Just enough of the ZIP format to read torch.save archives: the central directory (ZIP64
 * included, which torch writes even for tiny files), stored and deflated entries. Every offset
 * and size is checked against the archive's length, so a truncated or forged archive fails
 * cleanly. The archive is a buffer (embeddings) or a file read piecewise (checkpoints of
 * gigabytes: only the directory and the pieces asked for are ever in memory).
 */

/** Random access to the archive's bytes. */
export interface ByteSource {
  readonly length: number;
  /** `length` bytes at `at`, already checked to lie inside the source. */
  bytes(at: number, length: number): Uint8Array;
  close(): void;
}

function memorySource(data: Uint8Array): ByteSource {
  return { length: data.length, bytes: (at, length) => data.subarray(at, at + length), close: () => undefined };
}

/** Reads through a window so parsing the directory field by field costs few system calls. */
function fileSource(path: string): ByteSource {
  const fd = openSync(path, 'r');
  const length = fstatSync(fd).size;
  const WINDOW = 1 << 16;
  let window: Uint8Array = new Uint8Array(0);
  let windowAt = 0;
  const readAt = (at: number, n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let done = 0;
    while (done < n) {
      const got = readSync(fd, out, done, n - done, at + done);
      if (got === 0) fail(`file ended at byte ${at + done} (it changed while being read?)`);
      done += got;
    }
    return out;
  };
  return {
    length,
    bytes(at, n) {
      if (n > WINDOW) return readAt(at, n);
      if (at < windowAt || at + n > windowAt + window.length) {
        // A fresh buffer, never refilled in place: bytes handed out earlier stay valid.
        windowAt = at;
        window = readAt(at, Math.min(WINDOW, length - at));
      }
      return window.subarray(at - windowAt, at - windowAt + n);
    },
    close: () => closeSync(fd),
  };
}

const SIG = { eocd: 0x06054b50, zip64Locator: 0x07064b50, zip64Eocd: 0x06064b50, central: 0x02014b50, local: 0x04034b50 } as const;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const MAX_ENTRIES = 100_000;

interface Entry {
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

function fail(message: string): never {
  throw new EmbeddingError(`zip: ${message}`);
}

class Reader {
  constructor(readonly source: ByteSource) {}

  need(at: number, length: number, what: string): void {
    if (at < 0 || length < 0 || at + length > this.source.length) fail(`${what} at byte ${at} runs past the end of the file (truncated?)`);
  }

  private view(at: number, length: number): DataView {
    this.need(at, length, 'field');
    const b = this.source.bytes(at, length);
    return new DataView(b.buffer, b.byteOffset, length);
  }

  u16(at: number): number {
    return this.view(at, 2).getUint16(0, true);
  }

  u32(at: number): number {
    return this.view(at, 4).getUint32(0, true);
  }

  u64(at: number): number {
    const value = this.view(at, 8).getBigUint64(0, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`size ${value} at byte ${at} is absurd`);
    return Number(value);
  }

  bytes(at: number, length: number, what: string): Uint8Array {
    this.need(at, length, what);
    return this.source.bytes(at, length);
  }
}

export class ZipArchive {
  private readonly entries = new Map<string, Entry>();
  private readonly reader: Reader;

  /** An archive in memory, or (through ZipArchive.open) a file. */
  constructor(data: Uint8Array | ByteSource) {
    const source = data instanceof Uint8Array ? memorySource(data) : data;
    this.reader = new Reader(source);
    try {
      this.readDirectory();
    } catch (err) {
      source.close();
      throw err;
    }
  }

  /** A zip file on disk, read piecewise; close() it when done. */
  static open(path: string): ZipArchive {
    return new ZipArchive(fileSource(path));
  }

  close(): void {
    this.reader.source.close();
  }

  private readDirectory(): void {
    const r = this.reader;
    const eocd = findEocd(r);
    let count = r.u16(eocd + 10);
    let cdSize = r.u32(eocd + 12);
    let cdOffset = r.u32(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (r.u32(locator) !== SIG.zip64Locator) fail('ZIP64 end-of-directory locator missing');
      const zip64 = r.u64(locator + 8);
      if (r.u32(zip64) !== SIG.zip64Eocd) fail('ZIP64 end-of-directory record missing');
      count = r.u64(zip64 + 32);
      cdSize = r.u64(zip64 + 40);
      cdOffset = r.u64(zip64 + 48);
    }
    if (count > MAX_ENTRIES) fail(`${count} entries is absurd`);
    r.need(cdOffset, cdSize, 'central directory');
    let at = cdOffset;
    for (let i = 0; i < count; i++) {
      if (r.u32(at) !== SIG.central) fail(`central directory entry ${i} is corrupt`);
      const nameLength = r.u16(at + 28);
      const extraLength = r.u16(at + 30);
      const commentLength = r.u16(at + 32);
      const name = new TextDecoder().decode(r.bytes(at + 46, nameLength, 'entry name').slice());
      r.need(at + 46 + nameLength, extraLength, 'entry extra field');
      const entry: Entry = { method: r.u16(at + 10), compressedSize: r.u32(at + 20), size: r.u32(at + 24), localOffset: r.u32(at + 42) };
      readZip64Extra(r, at + 46 + nameLength, extraLength, entry);
      this.entries.set(name, entry);
      at += 46 + nameLength + extraLength + commentLength;
    }
  }

  get names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry's size once extracted. */
  size(name: string): number {
    const entry = this.entries.get(name);
    if (!entry) fail(`archive has no '${name}'`);
    return entry.size;
  }

  /** Where a stored (uncompressed) entry's data starts in the archive. */
  private dataStart(name: string, entry: Entry): number {
    const r = this.reader;
    if (r.u32(entry.localOffset) !== SIG.local) fail(`local header of '${name}' is corrupt`);
    return entry.localOffset + 30 + r.u16(entry.localOffset + 26) + r.u16(entry.localOffset + 28);
  }

  /**
   * `length` bytes from `offset` into a stored entry, without reading the rest of it (torch
   * stores tensor data uncompressed); deflated entries are inflated whole first.
   */
  readRange(name: string, offset: number, length: number): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) fail(`archive has no '${name}'`);
    if (offset < 0 || length < 0 || offset + length > entry.size) fail(`range ${offset}+${length} lies outside '${name}' (${entry.size} bytes)`);
    if (entry.method !== 0) return this.read(name).subarray(offset, offset + length);
    if (entry.size !== entry.compressedSize) fail(`stored entry '${name}' has inconsistent sizes`);
    return this.reader.bytes(this.dataStart(name, entry) + offset, length, `data of '${name}'`);
  }

  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) fail(`archive has no '${name}'`);
    const raw = this.reader.bytes(this.dataStart(name, entry), entry.compressedSize, `data of '${name}'`);
    if (entry.method === 0) {
      if (entry.size !== entry.compressedSize) fail(`stored entry '${name}' has inconsistent sizes`);
      return raw;
    }
    if (entry.method !== 8) fail(`entry '${name}' uses compression method ${entry.method}`);
    try {
      const out = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
      if (out.length !== entry.size) fail(`entry '${name}' inflates to ${out.length} bytes, expected ${entry.size}`);
      return out;
    } catch (err) {
      if (err instanceof EmbeddingError) throw err;
      fail(`entry '${name}' does not inflate`);
    }
  }
}

function findEocd(r: Reader): number {
  const last = r.source.length - EOCD_SIZE;
  const from = Math.max(0, last - MAX_COMMENT);
  if (last < 0) fail('no end-of-directory record (not a zip archive, or truncated)');
  const tail = r.bytes(from, last + 4 - from, 'end of directory');
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  for (let at = last; at >= from; at--) {
    if (view.getUint32(at - from, true) === SIG.eocd) return at;
  }
  fail('no end-of-directory record (not a zip archive, or truncated)');
}

/** ZIP64 extra field (id 1): the 64-bit values, in this order, of exactly the fields saturated at 0xffffffff. */
function readZip64Extra(r: Reader, at: number, length: number, entry: Entry): void {
  const end = at + length;
  while (at + 4 <= end) {
    const id = r.u16(at);
    const size = r.u16(at + 2);
    if (id === 1) {
      let p = at + 4;
      for (const key of ['size', 'compressedSize', 'localOffset'] as const) {
        if (entry[key] !== 0xffffffff) continue;
        if (p + 8 > at + 4 + size) fail('ZIP64 extra field is too short');
        entry[key] = r.u64(p);
        p += 8;
      }
    }
    at += 4 + size;
  }
}
