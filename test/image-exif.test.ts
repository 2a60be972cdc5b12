import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeImage } from '../src/image/encode-image.js';
import { avifExif, insertAvifExif } from '../src/image/exif/avif.js';
import { InvalidExifError } from '../src/image/exif/errors.js';
import { insertJpegExif } from '../src/image/exif/jpeg.js';
import { exifUserComment } from '../src/image/exif/read.js';
import { readUserComment, userCommentExif } from '../src/image/exif/user-comment.js';
import { insertWebpExif } from '../src/image/exif/webp.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { createRaster } from '../src/image/raster.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';

/** References from tools/make_exif_refs.py: piexif 1.1.3 and pillow-avif-plugin 1.4.3, as A1111 saves. */
interface Case {
  name: string;
  text: string;
  exifHex: string;
  inserted: Record<string, { sha256: string; length: number; readBack: string }>;
  avif: { file: string; payloadHex: string; readBack: string };
}
const dir = join(FIXTURES, 'exif');
const refs = readJson<{ cases: Case[] }>(join(dir, 'refs.json'));
const file = (name: string): Buffer => readFileSync(join(dir, name));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('the EXIF block is piexif.dump of A1111\'s UserComment, byte for byte (ASCII, Latin-1, non-BMP, lone surrogate, empty)', () => {
  assert.is(refs.cases.length, 5);
  for (const c of refs.cases) assert.is(userCommentExif(c.text).toString('hex'), c.exifHex, c.name);
});

test('JPEG (with and without JFIF APP0) and WebP (VP8, VP8L): the file piexif.insert makes, byte for byte', () => {
  for (const c of refs.cases) {
    const exif = userCommentExif(c.text);
    for (const [name, expected] of Object.entries(c.inserted)) {
      const insert = name.endsWith('.jpg') ? insertJpegExif : insertWebpExif;
      const ours = insert(file(name), exif);
      assert.is(ours.length, expected.length, `${c.name} ${name}`);
      assert.is(sha(ours), expected.sha256, `${c.name} ${name}`);
      assert.is(exifUserComment(ours), expected.readBack, `${c.name} ${name} read back`);
      // Inserting again replaces the block rather than adding a second one.
      assert.is(sha(insert(ours, exif)), expected.sha256, `${c.name} ${name} twice`);
    }
  }
});

test("AVIF: the Exif item carries pillow-avif-plugin's payload; ours and PIL's files read back the same text", async () => {
  for (const c of refs.cases) {
    const ours = insertAvifExif(file('bare.avif'), userCommentExif(c.text));
    const payload = Buffer.from(c.avif.payloadHex, 'hex');
    assert.equal(avifExif(ours), payload.subarray(4 + payload.readUInt32BE(0)), c.name);
    assert.is(exifUserComment(ours), c.avif.readBack, c.name);
    assert.is(exifUserComment(file(c.avif.file)), c.avif.readBack, `${c.name}: PIL's file`);
    // libheif (through sharp) parses the edited container: same picture, and it finds the Exif item.
    const meta = await sharp(ours).metadata();
    assert.ok(meta.exif && readUserComment(meta.exif) === c.avif.readBack, `${c.name}: libheif reads the Exif item`);
    const [a, b] = await Promise.all([ours, file('bare.avif')].map((f) => sharp(f).raw().toBuffer()));
    assert.ok(a!.equals(b!), `${c.name}: pixels unchanged`);
  }
});

test('encodeImage writes each format with its parameters; info reads them back; the same input gives the same bytes', async () => {
  const raster = createRaster(40, 24, 3);
  raster.data.forEach((_, i) => (raster.data[i] = (i * 31) % 251));
  const text = 'a red fox \u2713\nSteps: 2, Sampler: Euler, CFG scale: 7, Seed: 3, Size: 40x24';
  for (const format of ['png', 'jpeg', 'webp', 'avif'] as const) {
    const bytes = await encodeImage(raster, format, { parameters: text, quality: 90 });
    const meta = readGenerationMetadata(bytes);
    assert.is(meta.kind, 'a1111', format);
    assert.is(meta.kind === 'a1111' && meta.infotext, text, format);
    assert.is(meta.kind === 'a1111' && meta.parameters.seed, 3, format);
    assert.ok(bytes.equals(await encodeImage(raster, format, { parameters: text, quality: 90 })), `${format} deterministic`);
    const decoded = await sharp(bytes).metadata();
    assert.equal([decoded.width, decoded.height], [40, 24], format);
  }
});

test('malformed containers and EXIF blocks are InvalidExifError, never a crash', () => {
  const exif = userCommentExif('x');
  assert.throws(() => insertJpegExif(Buffer.from('not a jpeg'), exif), (e: unknown) => e instanceof InvalidExifError);
  assert.throws(() => insertJpegExif(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x40]), exif), (e: unknown) => e instanceof InvalidExifError);
  assert.throws(() => insertWebpExif(Buffer.from('RIFF\x20\x00\x00\x00WEBPVP8X'), exif), (e: unknown) => e instanceof InvalidExifError);
  const truncated = Buffer.from(userCommentExif('hello').subarray(0, 30));
  assert.throws(() => readUserComment(truncated), (e: unknown) => e instanceof InvalidExifError);
  assert.throws(() => readUserComment(Buffer.from('Exif\0\0XX\0*')), (e: unknown) => e instanceof InvalidExifError);
  const avif = Buffer.from(file('bare.avif'));
  avif.writeUInt32BE(0xffffff, 32); // the meta box's size
  assert.throws(() => exifUserComment(avif), (e: unknown) => e instanceof InvalidExifError);
});

test.run();
