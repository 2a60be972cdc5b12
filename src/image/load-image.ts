// Input images (init images, masks) to 8-bit RGB plus an optional alpha plane, decoded by sharp.
//
// Decoding is set up to give the pixels PIL gives A1111 and diffusers: EXIF orientation applied
// (ImageOps.exif_transpose), embedded ICC profiles ignored (PIL does not colour-manage), 16-bit samples
// reduced to their high byte, grey spread to RGB, palettes expanded. Verified equal to PIL on PNG
// (RGB, grey, palette, 16-bit, RGBA, ICC-tagged), JPEG (incl. EXIF-rotated) and WebP (lossless, lossy).
// Not covered: CMYK JPEGs (libvips and PIL convert CMYK to RGB differently); animated inputs use frame 1.
//
// Hostile input: only PNG, JPEG and WebP are decoded (told by their first bytes, not by sharp's
// guess: no SVG, whose renderer follows links), a file is read only if it is a regular file of at
// most MAX_IMAGE_FILE_BYTES, and a picture only if its header's pixel count is at most
// MAX_INPUT_PIXELS: a 420 KB PNG can claim 12000x12000 and decode to gigabytes.

import sharp from 'sharp';
import { InputFileError, formatSize, readInputFile } from '../input-file.js';
import { ImageDecodeError, ImageInputError } from './errors.js';
import { type Raster, createRaster } from './raster.js';
import { type ResizeMode, fitToSize } from './resize-modes.js';

export type AlphaHandling =
  /** Composite onto `background` like A1111's images.flatten (img2img_background_color, default white). */
  | 'flatten'
  /** Discard alpha, keeping the stored colour of transparent pixels: PIL convert("RGB"), diffusers load_image. */
  | 'drop';

export interface LoadImageOptions {
  /** Default 'flatten'. */
  alpha?: AlphaHandling;
  /** RGB used by 'flatten'. Default white [255, 255, 255]. */
  background?: readonly [number, number, number];
  /** Resize to this size (both or neither) with `resizeMode`, applied to the colour and the alpha plane alike. */
  width?: number;
  height?: number;
  /** Default 'just-resize'. */
  resizeMode?: ResizeMode;
}

export interface LoadedImage {
  /** 3 channels. */
  rgb: Raster;
  /** 1 channel, the source's alpha (at the output size), or null when the source has none. For masks. */
  alpha: Raster | null;
}

// PIL's DIV255 rounding, as used by Image.paste(im, mask=im) in A1111's flatten.
const div255 = (v: number): number => {
  const t = v + 128;
  return ((t >> 8) + t) >> 8;
};

function split(rgba: Raster, alpha: AlphaHandling, background: readonly [number, number, number]): LoadedImage {
  const n = rgba.width * rgba.height;
  const rgb = createRaster(rgba.width, rgba.height, 3);
  const a = createRaster(rgba.width, rgba.height, 1);
  for (let i = 0; i < n; i++) {
    const alphaValue = rgba.data[i * 4 + 3]!;
    a.data[i] = alphaValue;
    for (let c = 0; c < 3; c++) {
      const s = rgba.data[i * 4 + c]!;
      rgb.data[i * 3 + c] = alpha === 'drop' ? s : div255(background[c]! * (255 - alphaValue) + s * alphaValue);
    }
  }
  return { rgb, alpha: a };
}

/** The most pixels a picture may have to be decoded: the largest canvas diffuse paints (8192x8192). */
export const MAX_INPUT_PIXELS = 8192 * 8192;
/** The largest image file read. */
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

export type InputFormat = 'png' | 'jpeg' | 'webp';

/** The format the first bytes announce, of the three diffuse reads. */
export function sniffImageFormat(bytes: Uint8Array): InputFormat | undefined {
  const ascii = (from: number, to: number) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1', from, to);
  if (bytes.length >= 8 && ascii(0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return undefined;
}

/** What a file that is none of the three looks like, for the message. */
function otherFormat(bytes: Uint8Array): string {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 512)).toString('latin1');
  if (bytes.length === 0) return 'it is empty';
  if (/^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<(!DOCTYPE\s+)?svg/i.test(head)) return 'it is an SVG drawing';
  if (head.startsWith('GIF8')) return 'it is a GIF';
  if (head.startsWith('II*\0') || head.startsWith('MM\0*')) return 'it is a TIFF';
  if (head.startsWith('BM')) return 'it is a BMP';
  if (head.slice(4, 12) === 'ftypavif' || head.slice(4, 12) === 'ftypheic') return 'it is an AVIF/HEIC';
  return 'it is not a PNG, JPEG or WebP picture';
}

/** Why a picture is refused before its pixels are decoded, or undefined. */
async function refusal(bytes: Uint8Array): Promise<string | undefined> {
  if (!sniffImageFormat(bytes)) return `${otherFormat(bytes)}; PNG, JPEG and WebP are read`;
  const { width = 0, height = 0 } = await sharp(bytes, { limitInputPixels: false }).metadata();
  if (width * height > MAX_INPUT_PIXELS) {
    return `it is ${width}x${height} (${(width * height / 1e6).toFixed(1)} megapixels); pictures of at most ${(MAX_INPUT_PIXELS / 1e6).toFixed(1)} megapixels (8192x8192) are read: scale it down first`;
  }
  return undefined;
}

async function decodeBytes(bytes: Uint8Array): Promise<Raster> {
  const refused = await refusal(bytes);
  if (refused) throw new Error(refused);
  const { data, info } = await sharp(bytes, { autoOrient: true, ignoreIcc: true, limitInputPixels: MAX_INPUT_PIXELS })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 && info.channels !== 4) throw new Error(`unexpected ${info.channels}-channel decode`);
  return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

async function decode(input: string | Uint8Array): Promise<Raster> {
  const path = typeof input === 'string' ? input : undefined;
  try {
    return await decodeBytes(typeof input === 'string' ? await readInputFile(input, { label: 'image', maxBytes: MAX_IMAGE_FILE_BYTES }) : input);
  } catch (err) {
    throw new ImageDecodeError(path, err instanceof InputFileError ? new Error(err.reason) : err);
  }
}

export interface LoadedImageFile extends LoadedImage {
  /** The file's bytes as read (hashed for the metadata, text chunks kept by the watermark). */
  bytes: Buffer;
}

/**
 * A picture a user named: read once (bounded, regular files only), decoded under the limits above.
 * Every failure is an ImageInputError (exit 2) naming `label` (the flag) and the path.
 */
export async function readImageFile(path: string, label: string, options: LoadImageOptions = {}): Promise<LoadedImageFile> {
  const limits = { label, maxBytes: MAX_IMAGE_FILE_BYTES, hint: `pictures up to ${formatSize(MAX_IMAGE_FILE_BYTES)} are read` };
  const bytes = await readInputFile(path, limits);
  try {
    return { ...(await loadImage(bytes, options)), bytes };
  } catch (err) {
    if (err instanceof RangeError) throw err;
    const cause = err instanceof ImageDecodeError ? err.cause : err;
    throw new ImageInputError(label, path, refusalText(cause), { cause: err });
  }
}

/** sharp's own words for a damaged file, on one line. */
function refusalText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/^it (is|has)/.test(message)) return message;
  return `not a readable PNG, JPEG or WebP picture (${message.split('\n')[0]!.replace(/^Input (buffer|file) /, '')})`;
}

/** Decode a file path or encoded bytes (anything sharp reads: PNG, JPEG, WebP, GIF, TIFF, AVIF, ...). */
export async function loadImage(input: string | Uint8Array, options: LoadImageOptions = {}): Promise<LoadedImage> {
  const { alpha = 'flatten', background = [255, 255, 255], width, height, resizeMode = 'just-resize' } = options;
  if ((width === undefined) !== (height === undefined)) throw new RangeError('give both width and height, or neither');
  const decoded = await decode(input);
  const loaded = decoded.channels === 4 ? split(decoded, alpha, background) : { rgb: decoded, alpha: null };
  if (width === undefined || height === undefined) return loaded;
  return {
    rgb: fitToSize(loaded.rgb, width, height, resizeMode),
    alpha: loaded.alpha && fitToSize(loaded.alpha, width, height, resizeMode),
  };
}
