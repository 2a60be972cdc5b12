import { fitToSize } from './resize-modes.js';
import type { Raster } from './raster.js';

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

// PIL's rounded division by 255 of a product of two 8-bit values (DIV255 / MULDIV255 in libImaging).
const div255 = (v: number): number => {
  const t = v + 128;
  return ((t >> 8) + t) >> 8;
};

/**
 * A1111 1.10's finish of an inpainted picture (processing.py apply_overlay, diffusers 0.32's VaeImageProcessor.apply_overlay
 * the same): the original kept as an overlay whose alpha is 255 - `mask` (an RGBa picture pasted through the inverted
 * mask onto a transparent one, then unpremultiplied: `Image.new('RGBa')`, `paste(..., mask=invert(mask))`,
 * `convert('RGBA')`), laid by PIL's `alpha_composite` over the painted picture. With `box` the painted picture is a
 * crop's: brought to the box's size by "crop and resize" (`resize_image(1, …)`) and put on a transparent canvas of the
 * original's size. PIL's integer arithmetic throughout, so a pixel where `mask` is 0 is the original's and one where it
 * is 255 the painted one's, byte for byte; between, levels follow PIL's truncations (not a rounded lerp).
 * `mask`: 8 bits a pixel at the original's size (A1111's mask_for_overlay).
 */
export function applyOverlay(original: Raster, painted: Raster, mask: Uint8Array, box?: Box): Raster {
  const { width, height } = original;
  const c = original.channels;
  const under = box ? fitToSize(painted, box.x1 - box.x0, box.y1 - box.y0, 'crop-and-resize') : painted;
  const data = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const inside = !box || (x >= box.x0 && x < box.x1 && y >= box.y0 && y < box.y1);
      const q = box ? ((y - box.y0) * under.width + x - box.x0) * c : p * c;
      const alpha = div255(255 * (255 - mask[p]!));
      const underAlpha = inside ? 255 : 0;
      // alpha_composite's coefficients: 7 extra bits, the divisions rounded down.
      const coef1 = alpha === 0 ? 0 : Math.floor((alpha * 255 * 255 * 128) / (alpha * 255 + underAlpha * (255 - alpha)));
      const coef2 = 255 * 128 - coef1;
      for (let ch = 0; ch < c; ch++) {
        const g = inside ? under.data[q + ch]! : 0;
        if (alpha === 0) {
          data[p * c + ch] = g;
          continue;
        }
        const premultiplied = div255(original.data[p * c + ch]! * (255 - mask[p]!));
        const kept = alpha === 255 ? premultiplied : Math.min(255, Math.floor((255 * premultiplied) / alpha));
        const t = kept * coef1 + g * coef2 + (0x80 << 7);
        data[p * c + ch] = (((t >> 8) + t) >> 8) >> 7;
      }
    }
  }
  return { width, height, channels: c, data };
}
