import { avifExif } from './avif.js';
import { jpegExif } from './jpeg.js';
import { readUserComment } from './user-comment.js';
import { webpExif } from './webp.js';

/** The container a file's first bytes announce, among those that carry EXIF here. */
export function exifContainer(bytes: Buffer): 'jpeg' | 'webp' | 'avif' | undefined {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpeg';
  if (bytes.length >= 12 && bytes.toString('latin1', 0, 4) === 'RIFF' && bytes.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 12 && bytes.toString('latin1', 4, 8) === 'ftyp' && /^(avif|avis|mif1|heic)$/.test(bytes.toString('latin1', 8, 12))) return 'avif';
  return undefined;
}

/** The EXIF UserComment of a JPEG, WebP or AVIF file (where A1111 keeps the parameters), if any. */
export function exifUserComment(bytes: Buffer): string | undefined {
  const container = exifContainer(bytes);
  const exif = container === 'jpeg' ? jpegExif(bytes) : container === 'webp' ? webpExif(bytes) : container === 'avif' ? avifExif(bytes) : undefined;
  return exif ? readUserComment(exif) : undefined;
}
