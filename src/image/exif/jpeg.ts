// EXIF in JPEG: an APP1 segment "Exif\0\0" + TIFF. Inserted as piexif.insert does it (A1111 calls it on
// the JPEG PIL saved): an existing Exif APP1 is replaced, a leading APP0 (JFIF) gives its place to the
// new segment, otherwise the segment goes right after SOI.

import { InvalidExifError } from './errors.js';

const SOI = 0xffd8;
const SOS = 0xffda;
const APP0 = 0xffe0;
const APP1 = 0xffe1;

interface Segment {
  marker: number;
  bytes: Buffer;
}

/** SOI, the marker segments before the scan, then everything from SOS on as one piece. */
function segments(jpeg: Buffer): Segment[] {
  if (jpeg.length < 4 || jpeg.readUInt16BE(0) !== SOI) throw new InvalidExifError('not a JPEG file (no SOI marker)');
  const out: Segment[] = [{ marker: SOI, bytes: jpeg.subarray(0, 2) }];
  let at = 2;
  for (;;) {
    if (at + 4 > jpeg.length) throw new InvalidExifError(`truncated JPEG segment at byte ${at}`);
    const marker = jpeg.readUInt16BE(at);
    if (marker === SOS) {
      out.push({ marker, bytes: jpeg.subarray(at) });
      return out;
    }
    const end = at + 2 + jpeg.readUInt16BE(at + 2);
    if ((marker & 0xff00) !== 0xff00 || end > jpeg.length) throw new InvalidExifError(`bad JPEG segment at byte ${at}`);
    out.push({ marker, bytes: jpeg.subarray(at, end) });
    at = end;
  }
}

const isExif = (s: Segment | undefined): boolean => s?.marker === APP1 && s.bytes.toString('latin1', 4, 10) === 'Exif\0\0';

/** The JPEG with `exif` ("Exif\0\0" + TIFF) as its EXIF segment. */
export function insertJpegExif(jpeg: Uint8Array, exif: Buffer): Buffer {
  const parts = segments(Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength));
  if (exif.length + 2 > 0xffff) throw new RangeError(`EXIF of ${exif.length} bytes does not fit one JPEG segment (64 KB)`);
  const header = Buffer.alloc(4);
  header.writeUInt16BE(APP1, 0);
  header.writeUInt16BE(exif.length + 2, 2);
  const app1: Segment = { marker: APP1, bytes: Buffer.concat([header, exif]) };
  // piexif's merge_segments, case by case.
  if (parts[1]?.marker === APP0 && isExif(parts[2])) parts.splice(1, 2, app1);
  else if (parts[1]?.marker === APP0 || isExif(parts[1])) parts[1] = app1;
  else parts.splice(1, 0, app1);
  return Buffer.concat(parts.map((p) => p.bytes));
}

/** The first Exif APP1's payload ("Exif\0\0" + TIFF), if any. */
export function jpegExif(jpeg: Buffer): Buffer | undefined {
  return segments(jpeg).find(isExif)?.bytes.subarray(4);
}
