import { fitToSize } from './resize-modes.js';
import { paste, type Raster } from './raster.js';

/** A1111's overlay: original and generated blended through m in [0, 1], exact where m is 0. */
export function overlay(original: Raster, generated: Raster, m: Float32Array): Raster {
  const data = new Uint8Array(generated.data.length);
  const c = generated.channels;
  for (let i = 0; i < data.length; i++) {
    const a = m[Math.floor(i / c)]!;
    data[i] = a === 0 ? original.data[i]! : Math.round(original.data[i]! * (1 - a) + generated.data[i]! * a);
  }
  return { ...generated, data };
}

export type Box = { x0: number; y0: number; x1: number; y1: number };

/** The bounding box of the mask's non-zero values, grown by padding and kept inside the picture. */
export function maskBox(mask: Float32Array, width: number, height: number, padding: number): Box | undefined {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x]! > 0) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x + 1);
        y1 = Math.max(y1, y + 1);
      }
    }
  }
  if (x1 < 0) return undefined;
  return { x0: Math.max(0, x0 - padding), y0: Math.max(0, y0 - padding), x1: Math.min(width, x1 + padding), y1: Math.min(height, y1 + padding) };
}

/**
 * Grows the box along one axis towards the aspect ratio of the processing size, as A1111's
 * expand_crop_region: the missing length truncated (int()), so the box may stay a pixel short of it.
 */
export function matchAspect(box: Box, aspect: number, width: number, height: number): Box {
  const grow = (lo: number, hi: number, want: number, limit: number): [number, number] => {
    const extra = Math.max(0, Math.trunc(want - (hi - lo)));
    let a = lo - Math.floor(extra / 2);
    let b = hi + extra - Math.floor(extra / 2);
    if (b > limit) {
      a -= b - limit;
      b = limit;
    }
    if (a < 0) {
      b = Math.min(limit, b - a);
      a = 0;
    }
    return [a, b];
  };
  const w = box.x1 - box.x0;
  const h = box.y1 - box.y0;
  if (w / h > aspect) {
    const [y0, y1] = grow(box.y0, box.y1, w / aspect, height);
    return { ...box, y0, y1 };
  }
  const [x0, x1] = grow(box.x0, box.x1, h * aspect, width);
  return { ...box, x0, x1 };
}

export function crop(image: Raster, box: Box): Raster {
  const w = box.x1 - box.x0;
  const h = box.y1 - box.y0;
  const c = image.channels;
  const data = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) data.set(image.data.subarray(((box.y0 + y) * image.width + box.x0) * c, ((box.y0 + y) * image.width + box.x1) * c), y * w * c);
  return { width: w, height: h, channels: c, data };
}

export function cropPlane(plane: Float32Array, width: number, box: Box): Float32Array {
  const w = box.x1 - box.x0;
  const out = new Float32Array(w * (box.y1 - box.y0));
  for (let y = box.y0; y < box.y1; y++) out.set(plane.subarray(y * width + box.x0, y * width + box.x1), (y - box.y0) * w);
  return out;
}

/** The processed crop, brought back to the box's size and pasted into the original, then blended through the mask. */
export function pasteBack(original: Raster, processed: Raster, box: Box, mask: Float32Array): Raster {
  const resized = fitToSize(processed, box.x1 - box.x0, box.y1 - box.y0, 'just-resize');
  const canvas: Raster = { ...original, data: Uint8Array.from(original.data) };
  paste(canvas, resized, box.x0, box.y0);
  return overlay(original, canvas, mask);
}
