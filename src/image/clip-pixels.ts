import { pilResize, type PilFilter } from './pil-resample.js';
import { normalizedPlanes } from './processor-pixels.js';
import { createRaster, type Raster } from './raster.js';

/** What transformers' CLIPImageProcessor does to a picture, from its preprocessor_config.json. */
export interface ClipProcessorSettings {
  /** Resize so the shorter side is this long (aspect kept), or to exactly this size; none when absent. */
  resize?: { shortestEdge: number } | { width: number; height: number };
  resample: PilFilter;
  /** Centre crop to this size (zero padding where the picture is smaller), or none. */
  crop?: { width: number; height: number };
  rescale: number | undefined;
  norm: { mean: readonly number[]; std: readonly number[] } | undefined;
}

/**
 * pixel_values [1, 3, h, w] as CLIPImageProcessor.preprocess makes them: the 8-bit picture resized
 * with PIL, centre-cropped, then rescaled and normalised (transformers 4.46's order and arithmetic).
 */
export function clipPixels(settings: ClipProcessorSettings, image: Raster): { data: Float32Array; width: number; height: number } {
  let picture = image;
  if (settings.resize) {
    const size = 'shortestEdge' in settings.resize ? shortestEdgeSize(settings.resize.shortestEdge, image.width, image.height) : settings.resize;
    if (size.width !== image.width || size.height !== image.height) picture = pilResize(image, size.width, size.height, settings.resample);
  }
  if (settings.crop) picture = centerCrop(picture, settings.crop.width, settings.crop.height);
  return { data: normalizedPlanes(picture, settings.rescale, settings.norm), width: picture.width, height: picture.height };
}

/** transformers' get_resize_output_image_size(default_to_square=False): the long side truncated, as Python's int(). */
export function shortestEdgeSize(edge: number, width: number, height: number): { width: number; height: number } {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((edge * long) / short);
  return width <= height ? { width: edge, height: newLong } : { width: newLong, height: edge };
}

/**
 * transformers' center_crop: offsets floor((size - crop) / 2); a picture smaller than the crop is
 * first centred on zeros (padding ceil((crop - size) / 2) before it).
 */
export function centerCrop(image: Raster, width: number, height: number): Raster {
  if (image.width === width && image.height === height) return image;
  const padX = Math.max(0, Math.ceil((width - image.width) / 2));
  const padY = Math.max(0, Math.ceil((height - image.height) / 2));
  const left = Math.floor((image.width - width) / 2) + padX;
  const top = Math.floor((image.height - height) / 2) + padY;
  const out = createRaster(width, height, image.channels);
  const ch = image.channels;
  for (let y = 0; y < height; y++) {
    const sy = top + y - padY;
    if (sy < 0 || sy >= image.height) continue;
    for (let x = 0; x < width; x++) {
      const sx = left + x - padX;
      if (sx < 0 || sx >= image.width) continue;
      const from = (sy * image.width + sx) * ch;
      out.data.set(image.data.subarray(from, from + ch), (y * width + x) * ch);
    }
  }
  return out;
}
