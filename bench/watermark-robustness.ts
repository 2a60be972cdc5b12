/**
 * How much of the invisible watermark survives common edits: each picture is marked with the 48-bit SDXL
 * message (channel order bgr), edited, read back, and the agreeing bits are counted (a match needs 36, see
 * src/image/watermark/match.ts). Pictures: the three watermark fixtures (synthetic scenes: gradients, flat
 * shapes, a noisy band; 256x256, 261x253, 262x254) and fractal-noise pictures at 512x512 and 1024x1024
 * (sums of octaves of interpolated random grids, amplitude halving per octave: the 1/f spectrum of
 * photographs, without a photograph in the repository). JPEG is sharp's encoder (libvips, 4:2:0 chroma),
 * resizing PIL's Lanczos.
 * Prints a Markdown table; nothing is asserted (the numbers depend on content and on the JPEG encoder).
 *
 *   npx tsc -p . && node dist/bench/watermark-robustness.js
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { loadImage } from '../src/image/load-image.js';
import { pilResize } from '../src/image/pil-resample.js';
import type { Raster } from '../src/image/raster.js';
import { crop } from '../src/image/composite.js';
import { embedWatermark, watermarkFits } from '../src/image/watermark/dwt-dct.js';
import { detectWatermark } from '../src/image/watermark/detect.js';
import { SDXL_WATERMARK_BITS } from '../src/image/watermark/payload.js';

const FIXTURES = new URL('../../test/fixtures/watermark/', import.meta.url);
const SOURCES = ['sdxl-256x256.in.png', 'text-261x253.in.png', 'sdxl-rgb-262x254.in.png'];

/** mulberry32: a small seeded generator, so the pictures are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Octaves of bilinearly interpolated random grids (cell 256 px down to 1 px), amplitude halving per octave. */
function fractalNoise(width: number, height: number, seed: number): Raster {
  const next = random(seed);
  const planes = [0, 1, 2].map(() => new Float64Array(width * height));
  for (let cell = 256, amplitude = 1; cell >= 1; cell /= 2, amplitude /= 2) {
    const gw = Math.ceil(width / cell) + 2;
    const gh = Math.ceil(height / cell) + 2;
    for (const plane of planes) {
      const grid = Float64Array.from({ length: gw * gh }, () => next() - 0.5);
      for (let y = 0; y < height; y++) {
        const gy = y / cell;
        const y0 = Math.floor(gy);
        const fy = gy - y0;
        for (let x = 0; x < width; x++) {
          const gx = x / cell;
          const x0 = Math.floor(gx);
          const fx = gx - x0;
          const top = grid[y0 * gw + x0]! * (1 - fx) + grid[y0 * gw + x0 + 1]! * fx;
          const bottom = grid[(y0 + 1) * gw + x0]! * (1 - fx) + grid[(y0 + 1) * gw + x0 + 1]! * fx;
          plane[y * width + x]! += amplitude * (top * (1 - fy) + bottom * fy);
        }
      }
    }
  }
  const image: Raster = { width, height, channels: 3, data: new Uint8Array(width * height * 3) };
  for (let i = 0; i < width * height; i++) {
    // a shared luminance with weaker colour, as in photographs
    const luma = planes[0]![i]!;
    for (let c = 0; c < 3; c++) image.data[3 * i + c] = Math.max(0, Math.min(255, Math.round(128 + 100 * luma + 40 * planes[(c % 2) + 1]![i]! * (c === 1 ? -1 : 1))));
  }
  return image;
}

async function jpeg(image: Raster, quality: number, chromaSubsampling = '4:2:0'): Promise<Raster> {
  const { width, height, channels, data } = image;
  const bytes = await sharp(data, { raw: { width, height, channels } }).jpeg({ quality, chromaSubsampling }).toBuffer();
  return (await loadImage(bytes)).rgb;
}

const halfAndBack = (image: Raster): Raster =>
  pilResize(pilResize(image, Math.round(image.width / 2), Math.round(image.height / 2)), image.width, image.height);

/** Keep 90% of each side: from the top-left corner (the block grid stays put) or centred (it moves). */
function cropTenPercent(image: Raster, centred: boolean): Raster {
  const width = Math.round(image.width * 0.9);
  const height = Math.round(image.height * 0.9);
  const x0 = centred ? Math.floor((image.width - width) / 2) : 0;
  const y0 = centred ? Math.floor((image.height - height) / 2) : 0;
  return crop(image, { x0, y0, x1: x0 + width, y1: y0 + height });
}

const EDITS: [string, (image: Raster) => Raster | Promise<Raster>][] = [
  ['none (PNG)', (image) => image],
  ['JPEG quality 95, no chroma subsampling', (image) => jpeg(image, 95, '4:4:4')],
  ['JPEG quality 90, no chroma subsampling', (image) => jpeg(image, 90, '4:4:4')],
  ['JPEG quality 90', (image) => jpeg(image, 90)],
  ['JPEG quality 75', (image) => jpeg(image, 75)],
  ['JPEG quality 50', (image) => jpeg(image, 50)],
  ['resize 0.5x and back (Lanczos)', halfAndBack],
  ['crop 10% (right and bottom)', (image) => cropTenPercent(image, false)],
  ['crop 10% (centred)', (image) => cropTenPercent(image, true)],
];

async function main(): Promise<void> {
  const pictures: { label: string; image: Raster }[] = [];
  for (const name of SOURCES) {
    const image = (await loadImage(readFileSync(new URL(name, FIXTURES)))).rgb;
    pictures.push({ label: `${image.width}x${image.height}`, image });
  }
  for (const size of [512, 1024]) {
    for (const seed of [1, 2]) pictures.push({ label: `fractal ${size}² #${seed}`, image: fractalNoise(size, size, seed) });
  }
  const marked = pictures.map(({ image }) => embedWatermark(image));
  const rows: string[] = [];
  for (const [label, edit] of EDITS) {
    const cells: string[] = [];
    for (const image of marked) {
      const edited = await edit(image);
      if (!watermarkFits(edited.width, edited.height)) {
        cells.push('too small');
        continue;
      }
      const found = detectWatermark(edited, SDXL_WATERMARK_BITS, ['bgr']);
      cells.push(`${found.matchedBits}${found.matches ? '' : ' ✗'}`);
    }
    rows.push(`| ${label} | ${cells.join(' | ')} |`);
  }
  const unmarked = pictures.map(({ image }) => String(detectWatermark(image, SDXL_WATERMARK_BITS, ['bgr']).matchedBits));
  console.log(`| edit | ${pictures.map((p) => p.label).join(' | ')} |`);
  console.log(`| --- | ${pictures.map(() => '---').join(' | ')} |`);
  for (const row of rows) console.log(row);
  console.log(`| unmarked (for comparison) | ${unmarked.join(' | ')} |`);
  console.log('\nbits of 48 that agree with the SDXL message; ✗ = no match (fewer than 36); too small = under 256x256 pixels, which the library refuses to read');
}

await main();
