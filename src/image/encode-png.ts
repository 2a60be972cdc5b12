// Raster -> PNG bytes with text chunks (e.g. A1111's "parameters"). sharp encodes the pixels;
// the text chunks are spliced in afterwards because sharp cannot write them.

import sharp from 'sharp';
import { type PngTextEntry, insertPngText } from './png-text.js';
import type { Raster } from './raster.js';

export async function encodePng(image: Raster, text: readonly PngTextEntry[] = []): Promise<Buffer> {
  const { width, height, channels, data } = image;
  const png = await sharp(data, { raw: { width, height, channels } }).png().toBuffer();
  return text.length > 0 ? insertPngText(png, text) : png;
}
