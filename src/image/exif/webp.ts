// EXIF in WebP: an "EXIF" chunk of the extended format (VP8X), holding the TIFF without the "Exif\0\0"
// header. Inserted as piexif.insert does it: the chunk replaces an old one and goes before XMP or ANIM
// (else last), and VP8X is rewritten in front with the canvas size and feature flags of the chunks.

import { InvalidExifError } from './errors.js';

interface Chunk {
  fourcc: string;
  data: Buffer;
}

function chunks(webp: Buffer): Chunk[] {
  if (webp.length < 12 || webp.toString('latin1', 0, 4) !== 'RIFF' || webp.toString('latin1', 8, 12) !== 'WEBP') {
    throw new InvalidExifError('not a WebP file (no RIFF/WEBP header)');
  }
  const end = Math.min(webp.length, 8 + webp.readUInt32LE(4));
  const out: Chunk[] = [];
  let at = 12;
  while (at + 8 <= end) {
    const length = webp.readUInt32LE(at + 4);
    if (at + 8 + length > end) throw new InvalidExifError(`truncated WebP chunk at byte ${at}`);
    out.push({ fourcc: webp.toString('latin1', at, at + 4), data: webp.subarray(at + 8, at + 8 + length) });
    at += 8 + length + (length % 2);
  }
  return out;
}

/** Canvas size from the image chunk, as piexif reads it. */
function canvasSize(list: readonly Chunk[]): { width: number; height: number; alpha: boolean } {
  let size: { width: number; height: number } | undefined;
  let alpha = false;
  for (const { fourcc, data } of list) {
    if (fourcc === 'VP8X') size = { width: 1 + data.readUIntLE(4, 3), height: 1 + data.readUIntLE(7, 3) };
    else if (fourcc === 'VP8 ') {
      const start = data.indexOf(Buffer.of(0x9d, 0x01, 0x2a));
      if (start < 0) throw new InvalidExifError('VP8 chunk without a start code');
      size = { width: data.readUInt16LE(start + 3), height: data.readUInt16LE(start + 5) };
    } else if (fourcc === 'VP8L') {
      const bits = data.readUInt32LE(1);
      size = { width: 1 + (bits & 0x3fff), height: 1 + ((bits >>> 14) & 0x3fff) };
      alpha ||= ((data[4]! >> 4) & 1) === 1;
    } else if (fourcc === 'ALPH') alpha = true;
  }
  if (!size) throw new InvalidExifError('WebP without an image chunk');
  return { ...size, alpha };
}

function vp8x(list: readonly Chunk[]): Chunk {
  const { width, height, alpha } = canvasSize(list);
  const has = (f: string) => list.some((c) => c.fourcc === f);
  // Bits as piexif sets them: ICC 0x20, alpha 0x10, EXIF 0x08, XMP 0x04, animation 0x02.
  const flags = (has('ICCP') ? 0x20 : 0) | (alpha ? 0x10 : 0) | (has('EXIF') ? 0x08 : 0) | (has('XMP ') ? 0x04 : 0) | (has('ANIM') ? 0x02 : 0);
  const data = Buffer.alloc(10);
  data[0] = flags;
  data.writeUIntLE(width - 1, 4, 3);
  data.writeUIntLE(height - 1, 7, 3);
  return { fourcc: 'VP8X', data };
}

/** The WebP with `exif` ("Exif\0\0" + TIFF) in its EXIF chunk. */
export function insertWebpExif(webp: Uint8Array, exif: Buffer): Buffer {
  const list = chunks(Buffer.from(webp.buffer, webp.byteOffset, webp.byteLength)).filter((c) => c.fourcc !== 'EXIF');
  const chunk = { fourcc: 'EXIF', data: exif.subarray(6) };
  const before = list.findIndex((c) => c.fourcc === 'XMP ');
  const anim = list.findIndex((c) => c.fourcc === 'ANIM');
  const at = before >= 0 ? before : anim >= 0 ? anim : list.length;
  list.splice(at, 0, chunk);
  const body = [vp8x(list), ...list.filter((c) => c.fourcc !== 'VP8X')].map(frame);
  const header = Buffer.alloc(12);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(4 + body.reduce((n, b) => n + b.length, 0), 4);
  header.write('WEBP', 8, 'latin1');
  return Buffer.concat([header, ...body]);
}

function frame({ fourcc, data }: Chunk): Buffer {
  const head = Buffer.alloc(8);
  head.write(fourcc, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, Buffer.alloc(data.length % 2)]);
}

/** The EXIF chunk's payload, if any (TIFF, or "Exif\0\0" + TIFF as some writers store it). */
export function webpExif(webp: Buffer): Buffer | undefined {
  return chunks(webp).find((c) => c.fourcc === 'EXIF')?.data;
}
