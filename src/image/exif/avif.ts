// EXIF in AVIF (HEIF/ISOBMFF): an item of type "Exif" whose payload is a 4-byte offset to the TIFF
// header followed by the block, described by the meta box's iinf and iloc and linked to the primary
// item by an iref "cdsc". A1111 saves AVIF through pillow-avif-plugin with piexif's block: the payload is
// offset 6, then "Exif\0\0" + TIFF. We add that item to the file sharp encoded: the meta box grows, so
// every iloc offset behind it moves, and the payload goes into an mdat box of its own at the end.

import { InvalidExifError } from './errors.js';

interface Box {
  type: string;
  start: number;
  /** Where the payload starts (after size, type and, for full boxes, nothing else: callers skip version/flags). */
  body: number;
  end: number;
}

function boxes(buf: Buffer, from: number, to: number): Box[] {
  const out: Box[] = [];
  let at = from;
  while (at + 8 <= to) {
    let size = buf.readUInt32BE(at);
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > to) break;
      size = Number(buf.readBigUInt64BE(at + 8));
      body = at + 16;
    } else if (size === 0) size = to - at;
    if (size < body - at || at + size > to) throw new InvalidExifError(`bad box size at byte ${at}`);
    out.push({ type: buf.toString('latin1', at + 4, at + 8), start: at, body, end: at + size });
    at += size;
  }
  return out;
}

interface Extent {
  offset: number;
  length: number;
}

interface IlocItem {
  id: number;
  method: number;
  dataReference: number;
  baseOffset: number;
  extents: Extent[];
}

interface Iloc {
  version: number;
  offsetSize: number;
  lengthSize: number;
  baseOffsetSize: number;
  indexSize: number;
  items: IlocItem[];
}

class Cursor {
  constructor(
    private readonly buf: Buffer,
    public at: number,
  ) {}
  uint(size: number): number {
    const at = this.at;
    this.at += size;
    if (size === 0) return 0;
    if (this.at > this.buf.length) throw new InvalidExifError('truncated AVIF box');
    if (size === 8) return Number(this.buf.readBigUInt64BE(at));
    return this.buf.readUIntBE(at, size);
  }
}

function readIloc(buf: Buffer, box: Box): Iloc {
  const c = new Cursor(buf, box.body);
  const version = c.uint(1);
  c.uint(3);
  const sizes = c.uint(2);
  const iloc: Iloc = { version, offsetSize: sizes >> 12, lengthSize: (sizes >> 8) & 15, baseOffsetSize: (sizes >> 4) & 15, indexSize: version > 0 ? sizes & 15 : 0, items: [] };
  const count = c.uint(version < 2 ? 2 : 4);
  for (let i = 0; i < count; i++) {
    const id = c.uint(version < 2 ? 2 : 4);
    const method = version > 0 ? c.uint(2) & 15 : 0;
    const dataReference = c.uint(2);
    const baseOffset = c.uint(iloc.baseOffsetSize);
    const extents: Extent[] = [];
    for (let n = c.uint(2); n > 0; n--) {
      c.uint(iloc.indexSize);
      extents.push({ offset: c.uint(iloc.offsetSize), length: c.uint(iloc.lengthSize) });
    }
    iloc.items.push({ id, method, dataReference, baseOffset, extents });
  }
  return iloc;
}

function writeIloc(iloc: Iloc): Buffer {
  const parts: Buffer[] = [];
  const put = (value: number, size: number) => {
    if (size === 0) return;
    const b = Buffer.alloc(size);
    if (size === 8) b.writeBigUInt64BE(BigInt(value));
    else b.writeUIntBE(value, 0, size);
    parts.push(b);
  };
  put(iloc.version << 24, 4);
  put((iloc.offsetSize << 12) | (iloc.lengthSize << 8) | (iloc.baseOffsetSize << 4) | iloc.indexSize, 2);
  const idSize = iloc.version < 2 ? 2 : 4;
  put(iloc.items.length, idSize);
  for (const item of iloc.items) {
    put(item.id, idSize);
    if (iloc.version > 0) put(item.method, 2);
    put(item.dataReference, 2);
    put(item.baseOffset, iloc.baseOffsetSize);
    put(item.extents.length, 2);
    for (const e of item.extents) {
      put(0, iloc.indexSize);
      put(e.offset, iloc.offsetSize);
      put(e.length, iloc.lengthSize);
    }
  }
  return box('iloc', Buffer.concat(parts));
}

function box(type: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + payload.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}

interface ItemInfo {
  id: number;
  type: string;
}

function readIinf(buf: Buffer, iinf: Box): { version: number; entries: Box[]; items: ItemInfo[] } {
  const version = buf[iinf.body]!;
  const entriesAt = iinf.body + 4 + (version === 0 ? 2 : 4);
  const entries = boxes(buf, entriesAt, iinf.end).filter((b) => b.type === 'infe');
  const items = entries.map((e) => {
    const v = buf[e.body]!;
    if (v < 2) return { id: buf.readUInt16BE(e.body + 4), type: '' };
    const id = v === 2 ? buf.readUInt16BE(e.body + 4) : buf.readUInt32BE(e.body + 4);
    const typeAt = e.body + 4 + (v === 2 ? 2 : 4) + 2;
    return { id, type: buf.toString('latin1', typeAt, typeAt + 4) };
  });
  return { version, entries, items };
}

interface Meta {
  meta: Box;
  children: Box[];
  iloc: Box;
  iinf: Box;
}

function findMeta(buf: Buffer): Meta {
  const top = boxes(buf, 0, buf.length);
  if (top[0]?.type !== 'ftyp') throw new InvalidExifError('not an AVIF/HEIF file (no ftyp box)');
  const meta = top.find((b) => b.type === 'meta');
  if (!meta) throw new InvalidExifError('AVIF without a meta box');
  const children = boxes(buf, meta.body + 4, meta.end);
  const iloc = children.find((b) => b.type === 'iloc');
  const iinf = children.find((b) => b.type === 'iinf');
  if (!iloc || !iinf) throw new InvalidExifError('AVIF meta box without iloc or iinf');
  return { meta, children, iloc, iinf };
}

/** The AVIF with `exif` ("Exif\0\0" + TIFF) as its Exif item, payload as pillow-avif-plugin writes it. */
export function insertAvifExif(avif: Uint8Array, exif: Buffer): Buffer {
  const buf = Buffer.from(avif.buffer, avif.byteOffset, avif.byteLength);
  const { meta, children, iloc: ilocBox, iinf: iinfBox } = findMeta(buf);
  const iloc = readIloc(buf, ilocBox);
  const iinf = readIinf(buf, iinfBox);
  if (iinf.items.some((i) => i.type === 'Exif')) throw new InvalidExifError('the AVIF already has an Exif item');
  const primary = children.find((b) => b.type === 'pitm');
  if (!primary) throw new InvalidExifError('AVIF meta box without pitm');
  const primaryId = buf[primary.body] === 0 ? buf.readUInt16BE(primary.body + 4) : buf.readUInt32BE(primary.body + 4);
  const id = Math.max(...iinf.items.map((i) => i.id), ...iloc.items.map((i) => i.id)) + 1;
  if (id > 0xffff) throw new InvalidExifError('too many AVIF items');

  const infe = box('infe', Buffer.concat([Buffer.of(2, 0, 0, 0), u16(id), u16(0), Buffer.from('ExifExif\0', 'latin1')]));
  const countSize = iinf.version === 0 ? 2 : 4;
  const newIinf = box('iinf', Buffer.concat([buf.subarray(iinfBox.body, iinfBox.body + 4), uint(iinf.items.length + 1, countSize), ...iinf.entries.map((e) => buf.subarray(e.start, e.end)), infe]));
  const cdsc = box('cdsc', Buffer.concat([u16(id), u16(1), u16(primaryId)]));
  const oldIref = children.find((b) => b.type === 'iref');
  if (oldIref && buf[oldIref.body] !== 0) throw new InvalidExifError('AVIF iref with 32-bit item ids');
  const newIref = oldIref ? box('iref', Buffer.concat([buf.subarray(oldIref.body, oldIref.end), cdsc])) : box('iref', Buffer.concat([Buffer.alloc(4), cdsc]));

  const payload = Buffer.concat([uint(6, 4), exif]);
  const build = (shift: number, exifAt: number): Buffer => {
    const moved: Iloc = {
      ...iloc,
      items: [
        ...iloc.items.map((item) => movedItem(item, iloc, meta.end, shift)),
        { id, method: 0, dataReference: 0, baseOffset: iloc.baseOffsetSize ? exifAt : 0, extents: [{ offset: iloc.baseOffsetSize ? 0 : exifAt, length: payload.length }] },
      ],
    };
    const kids = children.filter((b) => b.type !== 'iref').flatMap((b) => {
      if (b.type === 'iloc') return [writeIloc(moved)];
      if (b.type === 'iinf') return [newIinf, newIref];
      return [buf.subarray(b.start, b.end)];
    });
    return box('meta', Buffer.concat([buf.subarray(meta.body, meta.body + 4), ...kids]));
  };
  if (iloc.offsetSize === 0 && iloc.baseOffsetSize === 0) throw new InvalidExifError('AVIF iloc without offsets');
  const shift = build(0, 0).length - (meta.end - meta.start);
  const exifAt = buf.length + shift + 8;
  const newMeta = build(shift, exifAt);
  return Buffer.concat([buf.subarray(0, meta.start), newMeta, buf.subarray(meta.end), box('mdat', payload)]);
}

/** Offsets into the file behind the meta box move with it; data in idat (method 1) does not. */
function movedItem(item: IlocItem, iloc: Iloc, metaEnd: number, shift: number): IlocItem {
  if (item.method !== 0 || item.dataReference !== 0) return item;
  if (iloc.baseOffsetSize > 0 && item.baseOffset >= metaEnd) return { ...item, baseOffset: item.baseOffset + shift };
  return { ...item, extents: item.extents.map((e) => (item.baseOffset + e.offset >= metaEnd ? { ...e, offset: e.offset + shift } : e)) };
}

const u16 = (v: number): Buffer => uint(v, 2);

function uint(v: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUIntBE(v, 0, size);
  return b;
}

/** The Exif item's block (from its TIFF header on), if any. */
export function avifExif(avif: Buffer): Buffer | undefined {
  const { iloc: ilocBox, iinf: iinfBox } = findMeta(avif);
  const item = readIinf(avif, iinfBox).items.find((i) => i.type === 'Exif');
  if (!item) return undefined;
  const location = readIloc(avif, ilocBox).items.find((i) => i.id === item.id);
  if (!location || location.method !== 0) return undefined;
  const data = Buffer.concat(
    location.extents.map((e) => {
      const at = location.baseOffset + e.offset;
      if (at + e.length > avif.length) throw new InvalidExifError('Exif item outside the file');
      return avif.subarray(at, at + e.length);
    }),
  );
  if (data.length < 4) throw new InvalidExifError('Exif item too short');
  const tiffAt = 4 + data.readUInt32BE(0);
  if (tiffAt > data.length) throw new InvalidExifError('Exif item header points outside it');
  return data.subarray(tiffAt);
}
