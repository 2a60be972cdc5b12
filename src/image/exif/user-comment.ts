// The EXIF that AUTOMATIC1111 writes into JPEG, WebP and AVIF files: piexif.dump of one Exif-IFD tag,
// UserComment, holding the infotext as piexif.helper.UserComment.dump(text, encoding="unicode") makes it
// ("UNICODE\0" then UTF-16 big-endian). The layout is piexif's, byte for byte: a big-endian TIFF, IFD0 with
// only the Exif pointer, and an Exif IFD without a next-IFD offset (piexif writes none there).

import { InvalidExifError } from './errors.js';

const EXIF_HEADER = Buffer.from('Exif\0\0', 'latin1');
const TAG_EXIF_IFD = 0x8769;
const TAG_USER_COMMENT = 0x9286;
const TYPE_LONG = 4;
const TYPE_UNDEFINED = 7;

const PREFIXES: Record<string, string> = {
  'ASCII\0\0\0': 'ascii',
  'UNICODE\0': 'utf-16be',
  'JIS\0\0\0\0\0': 'shift_jis',
};

/** "Exif\0\0" + TIFF, as piexif.dump returns it for {"Exif": {UserComment: ...}}. */
export function userCommentExif(text: string): Buffer {
  const comment = Buffer.concat([Buffer.from('UNICODE\0', 'latin1'), utf16be(text)]);
  const ifd0 = 8;
  const exifIfd = ifd0 + 2 + 12 + 4;
  const exifValues = exifIfd + 2 + 12;
  const tiff = Buffer.alloc(exifValues + comment.length);
  tiff.write('MM\0*', 0, 'latin1');
  tiff.writeUInt32BE(ifd0, 4);
  tiff.writeUInt16BE(1, ifd0);
  entry(tiff, ifd0 + 2, TAG_EXIF_IFD, TYPE_LONG, 1, exifIfd);
  tiff.writeUInt32BE(0, ifd0 + 14);
  tiff.writeUInt16BE(1, exifIfd);
  entry(tiff, exifIfd + 2, TAG_USER_COMMENT, TYPE_UNDEFINED, comment.length, exifValues);
  comment.copy(tiff, exifValues);
  return Buffer.concat([EXIF_HEADER, tiff]);
}

function entry(buf: Buffer, at: number, tag: number, type: number, count: number, value: number): void {
  buf.writeUInt16BE(tag, at);
  buf.writeUInt16BE(type, at + 2);
  buf.writeUInt32BE(count, at + 4);
  buf.writeUInt32BE(value, at + 8);
}

/** UTF-16BE of the string's code units, as Python's 'utf_16_be' encodes it (lone surrogates become '?', its errors='replace'). */
function utf16be(text: string): Buffer {
  const out = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    let unit = text.charCodeAt(i);
    const high = unit >= 0xd800 && unit <= 0xdbff;
    const low = unit >= 0xdc00 && unit <= 0xdfff;
    const paired = high ? isLow(text.charCodeAt(i + 1)) : low && i > 0 && isHigh(text.charCodeAt(i - 1));
    if ((high || low) && !paired) unit = 0x3f;
    out.writeUInt16BE(unit, i * 2);
  }
  return out;
}

const isHigh = (u: number): boolean => u >= 0xd800 && u <= 0xdbff;
const isLow = (u: number): boolean => u >= 0xdc00 && u <= 0xdfff;

/**
 * The UserComment of an EXIF block ("Exif\0\0" + TIFF, or the TIFF alone, either byte order), decoded
 * as piexif.helper.UserComment.load does (errors='replace'); undefined when there is none.
 */
export function readUserComment(exif: Uint8Array): string | undefined {
  let buf = Buffer.from(exif.buffer, exif.byteOffset, exif.byteLength);
  if (buf.subarray(0, 6).equals(EXIF_HEADER)) buf = buf.subarray(6);
  const tiff = new TiffReader(buf);
  const exifIfd = tiff.find(tiff.firstIfd(), TAG_EXIF_IFD);
  if (!exifIfd) return undefined;
  const comment = tiff.find(tiff.u32(exifIfd.valueAt), TAG_USER_COMMENT);
  if (!comment) return undefined;
  const bytes = tiff.bytes(comment);
  const encoding = bytes.length >= 8 ? PREFIXES[bytes.toString('latin1', 0, 8)] : undefined;
  const body = bytes.subarray(8);
  if (encoding === 'utf-16be') return decodeUtf16be(body);
  if (encoding === 'shift_jis') return new TextDecoder('shift_jis').decode(body);
  if (encoding === 'ascii') return body.toString('latin1').replace(/[\u0080-\u00ff]/g, '\ufffd');
  // A1111 reads what piexif cannot (no or an unknown prefix) as UTF-8, prefix and all, dropping bad bytes.
  return new TextDecoder('utf-8').decode(bytes).replace(/\ufffd/g, '');
}

function decodeUtf16be(body: Buffer): string {
  const swapped = Buffer.from(body.subarray(0, body.length - (body.length % 2)));
  swapped.swap16();
  return new TextDecoder('utf-16le').decode(swapped) + (body.length % 2 ? '\ufffd' : '');
}

interface IfdEntry {
  type: number;
  count: number;
  /** Where the value (or its offset) sits. */
  valueAt: number;
}

const TYPE_SIZES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8 };

/** Just enough of TIFF to follow IFD0 to the Exif IFD, with every offset checked against the block. */
class TiffReader {
  private readonly little: boolean;

  constructor(private readonly buf: Buffer) {
    const order = buf.toString('latin1', 0, 2);
    if (order !== 'II' && order !== 'MM') throw new InvalidExifError('no TIFF header (II or MM)');
    this.little = order === 'II';
    if (this.u16(2) !== 42) throw new InvalidExifError('bad TIFF magic number');
  }

  firstIfd(): number {
    return this.u32(4);
  }

  u16(at: number): number {
    this.need(at, 2);
    return this.little ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
  }

  u32(at: number): number {
    this.need(at, 4);
    return this.little ? this.buf.readUInt32LE(at) : this.buf.readUInt32BE(at);
  }

  find(ifd: number, tag: number): IfdEntry | undefined {
    const count = this.u16(ifd);
    this.need(ifd + 2, count * 12);
    for (let i = 0; i < count; i++) {
      const at = ifd + 2 + i * 12;
      if (this.u16(at) === tag) return { type: this.u16(at + 2), count: this.u32(at + 4), valueAt: at + 8 };
    }
    return undefined;
  }

  bytes(e: IfdEntry): Buffer {
    const length = e.count * (TYPE_SIZES[e.type] ?? 1);
    const at = length > 4 ? this.u32(e.valueAt) : e.valueAt;
    this.need(at, length);
    return this.buf.subarray(at, at + length);
  }

  private need(at: number, length: number): void {
    if (at < 0 || at + length > this.buf.length) throw new InvalidExifError(`offset ${at} (+${length}) is outside the EXIF block of ${this.buf.length} bytes`);
  }
}
