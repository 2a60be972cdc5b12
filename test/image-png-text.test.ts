import { readFileSync } from 'node:fs';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../src/image/encode-png.js';
import { InvalidPngError } from '../src/image/errors.js';
import { crc32, encodePngTextChunk, insertPngText, pngTextRecord, readPngText } from '../src/image/png-text.js';

// Fixtures written by tools/make_image_refs.py with PIL's PngInfo.
const fixture = (name: string): Buffer => readFileSync(new URL(`../../test/fixtures/image/${name}`, import.meta.url));
const refs = JSON.parse(fixture('refs.json').toString('utf8')) as {
  text: { expected: Record<string, string>; chunks: { keyword: string; text: string; chunkHex: string }[] };
};

function chunkTypes(png: Buffer): string[] {
  const types: string[] = [];
  for (let pos = 8; pos < png.length; pos += 12 + png.readUInt32BE(pos)) types.push(png.toString('latin1', pos + 4, pos + 8));
  return types;
}

const tinyPng = (): Promise<Buffer> =>
  sharp(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), { raw: { width: 2, height: 2, channels: 3 } }).png().toBuffer();

test('crc32: the CRC-32 check value, and zlib agreement where node:zlib has crc32', () => {
  assert.is(crc32(Buffer.from('123456789')), 0xcbf43926); // standard check value of CRC-32/ISO-HDLC
  const zlibCrc = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37) & 255));
  if (zlibCrc) assert.is(crc32(data), zlibCrc(data));
  assert.is(crc32(data.subarray(500), crc32(data.subarray(0, 500))), crc32(data));
});

test('reads tEXt (Latin-1), zTXt, iTXt (plain, compressed, with language) as PIL does', () => {
  const chunks = readPngText(fixture('text-pil.png'));
  assert.equal(pngTextRecord(chunks), refs.text.expected);
  assert.equal(
    chunks.map((c) => [c.keyword, c.type, c.compressed]),
    [['parameters', 'tEXt', false], ['uni', 'iTXt', false], ['zt', 'zTXt', true], ['itz', 'iTXt', true], ['lang', 'iTXt', false]],
  );
  const lang = chunks.find((c) => c.keyword === 'lang')!;
  assert.is(lang.languageTag, 'en');
  assert.is(lang.translatedKeyword, 'Sprache');
});

test('encodes a text chunk byte for byte as PIL PngInfo.add_text (tEXt for Latin-1, else iTXt)', () => {
  for (const c of refs.text.chunks) {
    assert.is(encodePngTextChunk({ keyword: c.keyword, text: c.text }).toString('hex'), c.chunkHex, c.text);
  }
});

test('insert: chunks go before the first IDAT, same-keyword chunks are replaced, pixels untouched', async () => {
  const png = await tinyPng();
  const once = insertPngText(png, [{ keyword: 'parameters', text: 'old' }, { keyword: 'Software', text: 'x' }]);
  const twice = insertPngText(once, [{ keyword: 'parameters', text: 'a cat, 猫\nSteps: 20' }]);
  assert.equal(pngTextRecord(readPngText(twice)), { Software: 'x', parameters: 'a cat, 猫\nSteps: 20' });
  const types = chunkTypes(twice);
  assert.ok(types.lastIndexOf('iTXt') < types.indexOf('IDAT'));
  assert.is(types.filter((t) => t === 'iTXt' || t === 'tEXt').length, 2);
  const before = await sharp(png).raw().toBuffer();
  const after = await sharp(twice).raw().toBuffer();
  assert.ok(before.equals(after));
});

test('encodePng: sharp pixels plus our text chunks', async () => {
  const data = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 11) & 255);
  const png = await encodePng({ width: 5, height: 3, channels: 3, data }, [{ keyword: 'parameters', text: 'é' }]);
  assert.equal(pngTextRecord(readPngText(png)), { parameters: 'é' });
  assert.ok((await sharp(png).raw().toBuffer()).equals(Buffer.from(data)));
});

test('corrupt input is InvalidPngError, invalid keywords a RangeError', async () => {
  const good = insertPngText(await tinyPng(), [{ keyword: 'parameters', text: 'hello' }]);
  assert.throws(() => readPngText(Buffer.from('GIF89a not a png')), (e: unknown) => e instanceof InvalidPngError);
  assert.throws(() => readPngText(good.subarray(0, good.length - 20)), (e: unknown) => e instanceof InvalidPngError);
  const flipped = Buffer.from(good);
  flipped[good.indexOf('hello')] ^= 1;
  assert.throws(() => readPngText(flipped), (e: unknown) => e instanceof InvalidPngError && /CRC/.test(e.message));
  for (const keyword of ['', ' lead', 'trail ', 'two  spaces', 'x'.repeat(80), 'nul\u0000', '日本']) {
    assert.throws(() => encodePngTextChunk({ keyword, text: '' }), RangeError, JSON.stringify(keyword));
  }
});

test('a zTXt decompression bomb is refused', async () => {
  const body = Buffer.concat([Buffer.from('bomb\u0000\u0000', 'latin1'), zlib.deflateSync(Buffer.alloc(17 * 1024 * 1024))]);
  const chunk = Buffer.alloc(body.length + 12);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write('zTXt', 4, 'latin1');
  body.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  const png = await tinyPng();
  const bomb = Buffer.concat([png.subarray(0, 33), chunk, png.subarray(33)]); // after the 25-byte IHDR chunk
  assert.throws(() => readPngText(bomb), (e: unknown) => e instanceof InvalidPngError && /decompress/.test(e.message));
});

test.run();
