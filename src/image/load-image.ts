// Input images (init images, masks) to 8-bit RGB plus an optional alpha plane, decoded by sharp.
//
// Decoding is set up to give the pixels PIL gives A1111 and diffusers: EXIF orientation applied
// (ImageOps.exif_transpose), embedded ICC profiles ignored (PIL does not colour-manage), 16-bit samples
// reduced to their high byte, grey spread to RGB, palettes expanded. Verified equal to PIL on PNG
// (RGB, grey, palette, 16-bit, RGBA, ICC-tagged), JPEG (incl. EXIF-rotated) and WebP (lossless, lossy).
// Not covered: CMYK JPEGs (libvips and PIL convert CMYK to RGB differently); animated inputs use frame 1.

import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { ImageDecodeError } from './errors.js';
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

async function decode(input: string | Uint8Array): Promise<Raster> {
  const path = typeof input === 'string' ? input : undefined;
  try {
    const bytes = typeof input === 'string' ? await readFile(input) : input;
    const { data, info } = await sharp(bytes, { autoOrient: true, ignoreIcc: true })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 && info.channels !== 4) throw new Error(`unexpected ${info.channels}-channel decode`);
    return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    throw new ImageDecodeError(path, err);
  }
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
