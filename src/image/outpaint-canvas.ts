import sharp from 'sharp';
import { paste, type Raster } from './raster.js';

export interface Extension {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** How the new area is pre-filled, to give the model a start that continues the picture. */
export type OutpaintFill = 'stretch' | 'blur' | 'noise';

export const OUTPAINT_FILLS: readonly OutpaintFill[] = ['stretch', 'blur', 'noise'];

/** A canvas grown by `ext`, the original at (left, top), the margin filled as `fill` says. */
export async function extendCanvas(image: Raster, ext: Extension, fill: OutpaintFill, seed: number): Promise<Raster> {
  const width = image.width + ext.left + ext.right;
  const height = image.height + ext.top + ext.bottom;
  const stretched = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .extend({ ...ext, extendWith: 'copy' })
    .raw()
    .toBuffer();
  const canvas: Raster = { width, height, channels: image.channels, data: new Uint8Array(stretched) };
  if (fill === 'blur') {
    const blurred = await sharp(canvas.data, { raw: { width, height, channels: image.channels } })
      .blur(Math.max(8, Math.max(ext.left, ext.right, ext.top, ext.bottom) / 2))
      .raw()
      .toBuffer();
    canvas.data.set(blurred);
  } else if (fill === 'noise') {
    // A fixed-seed LCG: the fill is part of the input, so the same seed gives the same image.
    let state = seed >>> 0 || 1;
    for (let i = 0; i < canvas.data.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      canvas.data[i] = state >>> 24;
    }
  }
  paste(canvas, image, ext.left, ext.top);
  return canvas;
}

/**
 * The repaint mask of an extension: 1 over the new margin and `overlap` pixels into the old
 * picture, so the seam is repainted too; 0 elsewhere.
 */
export function outpaintMask(canvasWidth: number, canvasHeight: number, ext: Extension, overlap: number): Float32Array {
  const mask = new Float32Array(canvasWidth * canvasHeight);
  const inner = {
    x0: ext.left > 0 ? ext.left + overlap : 0,
    x1: ext.right > 0 ? canvasWidth - ext.right - overlap : canvasWidth,
    y0: ext.top > 0 ? ext.top + overlap : 0,
    y1: ext.bottom > 0 ? canvasHeight - ext.bottom - overlap : canvasHeight,
  };
  for (let y = 0; y < canvasHeight; y++) {
    for (let x = 0; x < canvasWidth; x++) {
      const kept = x >= inner.x0 && x < inner.x1 && y >= inner.y0 && y < inner.y1;
      mask[y * canvasWidth + x] = kept ? 0 : 1;
    }
  }
  return mask;
}

/** Splits an extension into passes of at most `maxStep` pixels per side. */
export function extensionPasses(ext: Extension, maxStep: number): Extension[] {
  const passes: Extension[] = [];
  const left = { ...ext };
  while (left.left + left.right + left.top + left.bottom > 0) {
    const take = (v: number) => Math.min(v, maxStep);
    const pass = { left: take(left.left), right: take(left.right), top: take(left.top), bottom: take(left.bottom) };
    passes.push(pass);
    left.left -= pass.left;
    left.right -= pass.right;
    left.top -= pass.top;
    left.bottom -= pass.bottom;
  }
  return passes;
}

