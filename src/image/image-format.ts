import { extname } from 'node:path';

/** The formats diffuse writes, each with the generation parameters inside (PNG text, or EXIF as A1111 writes it). */
export const IMAGE_FORMATS = ['png', 'jpeg', 'webp', 'avif'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

const BY_EXTENSION: Record<string, ImageFormat> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp', '.avif': 'avif' };

/** The format a file name asks for by its extension, if diffuse writes it. */
export function imageFormatOf(path: string): ImageFormat | undefined {
  return BY_EXTENSION[extname(path).toLowerCase()];
}
