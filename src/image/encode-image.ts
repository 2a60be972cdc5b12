// A raster to file bytes in one of the formats diffuse writes, with the generation parameters where
// AUTOMATIC1111 puts them: a PNG "parameters" text chunk, or for JPEG, WebP and AVIF an EXIF UserComment
// (piexif's block, inserted as piexif.insert and pillow-avif-plugin place it). sharp encodes the pixels.

import sharp from 'sharp';
import { encodePng } from './encode-png.js';
import { insertAvifExif } from './exif/avif.js';
import { insertJpegExif } from './exif/jpeg.js';
import { userCommentExif } from './exif/user-comment.js';
import { insertWebpExif } from './exif/webp.js';
import type { ImageFormat } from './image-format.js';
import type { Raster } from './raster.js';

/** A1111's default "Quality for saved jpeg and avif images" (opts.jpeg_quality), also used for WebP. */
export const DEFAULT_QUALITY = 80;

export interface EncodeOptions {
  /** The A1111 infotext to embed. */
  parameters: string;
  /** JPEG, WebP and AVIF quality, 1-100 (default 80). */
  quality?: number;
}

export async function encodeImage(image: Raster, format: ImageFormat, options: EncodeOptions): Promise<Buffer> {
  if (format === 'png') return encodePng(image, [{ keyword: 'parameters', text: options.parameters }]);
  const { width, height, channels, data } = image;
  const pixels = sharp(data, { raw: { width, height, channels } });
  const quality = options.quality ?? DEFAULT_QUALITY;
  const exif = userCommentExif(options.parameters);
  if (format === 'jpeg') return insertJpegExif(await pixels.jpeg({ quality }).toBuffer(), exif);
  if (format === 'webp') return insertWebpExif(await pixels.webp({ quality }).toBuffer(), exif);
  return insertAvifExif(await pixels.avif({ quality }).toBuffer(), exif);
}
