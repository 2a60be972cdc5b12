import { inflateRawSync } from 'node:zlib';
import { EmbeddingError } from './embedding-error.js';

/**
 * Just enough of the ZIP format to read torch.save archives: the central directory (ZIP64
 * included, which torch writes even for tiny files), stored and deflated entries. Every offset
 * and size is checked against the buffer, so a truncated or forged archive fails cleanly.
 */

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
  readonly view: DataView;

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(at: number, length: number, what: string): void {
    if (at < 0 || at + length > this.bytes.length) fail(`${what} at byte ${at} runs past the end of the file (truncated?)`);
  }

  u16(at: number): number {
    this.need(at, 2, 'field');
    return this.view.getUint16(at, true);
  }

  u32(at: number): number {
    this.need(at, 4, 'field');
    return this.view.getUint32(at, true);
  }

  u64(at: number): number {
    this.need(at, 8, 'field');
    const value = this.view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(`size ${value} at byte ${at} is absurd`);
    return Number(value);
  }
}

export class ZipArchive {
  private readonly entries = new Map<string, Entry>();
  private readonly reader: Reader;

  constructor(bytes: Uint8Array) {
    this.reader = new Reader(bytes);
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
      r.need(at + 46, nameLength + extraLength, 'entry name');
      const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
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

  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    if (!entry) fail(`archive has no '${name}'`);
    const r = this.reader;
    if (r.u32(entry.localOffset) !== SIG.local) fail(`local header of '${name}' is corrupt`);
    const start = entry.localOffset + 30 + r.u16(entry.localOffset + 26) + r.u16(entry.localOffset + 28);
    r.need(start, entry.compressedSize, `data of '${name}'`);
    const raw = r.bytes.subarray(start, start + entry.compressedSize);
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
  const last = r.bytes.length - EOCD_SIZE;
  for (let at = last; at >= 0 && at >= last - MAX_COMMENT; at--) {
    if (r.view.getUint32(at, true) === SIG.eocd) return at;
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
