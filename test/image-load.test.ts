import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageDecodeError } from '../src/image/errors.js';
import { loadImage } from '../src/image/load-image.js';
import { fitToSize } from '../src/image/resize-modes.js';

// References from tools/make_image_refs.py: PIL's pixels after ImageOps.exif_transpose + convert("RGB")
// (diffusers load_image), and A1111's flatten. Tolerance: none (bit exact).
const fixtureUrl = (name: string): URL => new URL(`../../test/fixtures/image/${name}`, import.meta.url);
const fixture = (name: string): Buffer => readFileSync(fixtureUrl(name));
const refs = JSON.parse(fixture('refs.json').toString('utf8')) as {
  decode: {
    files: { file: string; width: number; height: number; rgb: string }[];
    flatten: { file: string; background: string; rgb: string }[];
    alpha: string;
  };
};

const hexRgb = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

test('decodes PNG (RGB, grey, palette, 16-bit, RGBA, ICC-tagged), JPEG (incl. EXIF-rotated), WebP as PIL does', async () => {
  for (const f of refs.decode.files) {
    // 'drop' is PIL's convert("RGB"); path input for one half, bytes for the other
    const input = f.file.endsWith('.png') ? fixtureUrl(f.file).pathname : fixture(f.file);
    const { rgb, alpha } = await loadImage(input, { alpha: 'drop' });
    assert.equal([rgb.width, rgb.height, rgb.channels], [f.width, f.height, 3], f.file);
    assert.ok(Buffer.from(rgb.data).equals(fixture(f.rgb)), f.file);
    assert.is(alpha !== null, f.file === 'src-rgba.png', f.file);
  }
});

test('alpha: flattened on the background exactly like A1111 images.flatten; alpha plane exposed', async () => {
  for (const f of refs.decode.flatten) {
    const { rgb, alpha } = await loadImage(fixture(f.file), { background: hexRgb(f.background) });
    assert.ok(Buffer.from(rgb.data).equals(fixture(f.rgb)), f.background);
    assert.ok(Buffer.from(alpha!.data).equals(fixture(refs.decode.alpha)));
  }
  const white = await loadImage(fixture('src-rgba.png'));
  assert.ok(Buffer.from(white.rgb.data).equals(fixture(refs.decode.flatten.find((f) => f.background === '#ffffff')!.rgb)));
});

test('loading at a size resizes colour and alpha with the same mode', async () => {
  const full = await loadImage(fixture('src-rgba.png'));
  const sized = await loadImage(fixture('src-rgba.png'), { width: 40, height: 40, resizeMode: 'resize-and-fill' });
  assert.equal(sized.rgb, fitToSize(full.rgb, 40, 40, 'resize-and-fill'));
  assert.equal(sized.alpha, fitToSize(full.alpha!, 40, 40, 'resize-and-fill'));
});

test('unreadable input is ImageDecodeError with the path', async () => {
  for (const input of ['/nonexistent/dir/x.png', Buffer.from('not an image at all')]) {
    try {
      await loadImage(input);
      assert.unreachable('should throw');
    } catch (err) {
      assert.instance(err, ImageDecodeError);
      assert.is((err as ImageDecodeError).path, typeof input === 'string' ? input : undefined);
    }
  }
  try {
    await loadImage(fixture('src.png'), { width: 4 });
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, RangeError);
  }
});

test.run();
