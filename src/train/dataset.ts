import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { loadImage } from '../image/load-image.js';
import { pilResize } from '../image/pil-resample.js';
import { createRaster, type Raster } from '../image/raster.js';
import { TrainInputError } from './errors.js';

/**
 * Training pictures as diffusers' TextualInversionDataset prepares them: PIL's convert("RGB")
 * (alpha dropped), with --center-crop numpy's slice img[(h−c)//2 : (h+c)//2, (w−c)//2 : (w+c)//2]
 * for c = min(h, w), then Image.resize((size, size), BICUBIC) — a picture that is not square is
 * stretched unless cropped — an optional horizontal flip, and x / 127.5 − 1 in float32.
 * EXIF orientation is applied (diffuse reads every picture upright; PIL's Image.open does not).
 */

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif', '.tif', '.tiff', '.avif'] as const;

export interface TrainingImage {
  path: string;
  /** CHW float32 in [-1, 1] at size × size; `flipped` is the mirrored picture (absent when flips are off). */
  pixels: Float32Array;
  flipped?: Float32Array;
}

/** The picture files directly in `dir`, sorted by name; anything else there (captions, notes) is passed over. */
export function listImages(dir: string): string[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new TrainInputError(`--images ${dir} is not a folder (give a folder of pictures)`);
    names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && (IMAGE_EXTENSIONS as readonly string[]).includes(extname(e.name).toLowerCase()))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if (err instanceof TrainInputError) throw err;
    throw new TrainInputError(`--images: cannot read the folder ${dir}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message}`, { cause: err });
  }
  if (names.length === 0) throw new TrainInputError(`--images ${dir} holds no pictures (${IMAGE_EXTENSIONS.join(', ')})`);
  return names.map((n) => join(dir, n));
}

export async function loadTrainingImage(path: string, size: number, centerCrop: boolean, withFlip: boolean): Promise<TrainingImage> {
  let rgb: Raster;
  try {
    rgb = (await loadImage(path, { alpha: 'drop' })).rgb;
  } catch (err) {
    throw new TrainInputError(`--images: ${path} is not a picture diffuse can read (${(err as Error).message.split('\n')[0]}); remove it from the folder`, { cause: err });
  }
  const cropped = centerCrop ? centreCrop(rgb) : rgb;
  const resized = pilResize(cropped, size, size, 'bicubic');
  return { path, pixels: toPixels(resized), ...(withFlip ? { flipped: toPixels(mirror(resized)) } : {}) };
}

/** numpy's img[(h - c) // 2 : (h + c) // 2, (w - c) // 2 : (w + c) // 2] (odd margins give c − 1 rows or columns). */
function centreCrop(src: Raster): Raster {
  const c = Math.min(src.width, src.height);
  const [top, bottom] = [Math.floor((src.height - c) / 2), Math.floor((src.height + c) / 2)];
  const [left, right] = [Math.floor((src.width - c) / 2), Math.floor((src.width + c) / 2)];
  const out = createRaster(right - left, bottom - top, 3);
  for (let y = top; y < bottom; y++) out.data.set(src.data.subarray((y * src.width + left) * 3, (y * src.width + right) * 3), (y - top) * out.width * 3);
  return out;
}

function mirror(src: Raster): Raster {
  const out = createRaster(src.width, src.height, 3);
  for (let y = 0; y < src.height; y++) {
    for (let x = 0; x < src.width; x++) {
      const from = (y * src.width + (src.width - 1 - x)) * 3;
      out.data.set(src.data.subarray(from, from + 3), (y * src.width + x) * 3);
    }
  }
  return out;
}

/** (image / 127.5 − 1.0).astype(float32): computed in double, rounded once, CHW. */
function toPixels(src: Raster): Float32Array {
  const plane = src.width * src.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) out[c * plane + i] = src.data[i * 3 + c]! / 127.5 - 1;
  return out;
}
