import { blurMask, maskBytes } from '../../image/mask.js';
import { extendCanvas, extensionPasses, outpaintMask } from '../../image/outpaint-canvas.js';
import type { Raster } from '../../image/raster.js';
import type { GenerationRequest, Outpaint, PassRequest } from '../types.js';
import { unitsOnCanvas } from './control-region.js';
import { withoutTasks } from './inpaint.js';

/** The seam's reach into the old picture and its feather, as A1111's outpainting scripts default them. */
export const DEFAULT_OVERLAP = 16;
export const DEFAULT_SEAM_BLUR = 8;

/** Half the model's native size per pass: larger steps leave the model too little picture to continue. */
export const defaultPassSize = (nativeSize: number): number => Math.max(8, Math.floor(nativeSize / 2 / 8) * 8);

/** The passes that grow one image's canvas, each given the previous pass's picture. */
export interface OutpaintPlan {
  passes: number;
  pass(p: number, previous: Raster): Promise<PassRequest>;
}

/**
 * Outpainting as passes around the one denoising loop: each pass grows the canvas by at most
 * passSize per side, pre-fills the margin, and repaints it with the seam `overlap` pixels into the
 * old picture, blended back through a feathered mask that never reaches past twice the overlap;
 * ControlNet units read their pictures fitted to the final canvas, each pass its own window of them.
 * `request` is one image's (outpainting runs each image of a batch alone), checked by check-request.ts.
 */
export function outpaintPlan(request: GenerationRequest, outpaint: Outpaint, nativeSize: number): OutpaintPlan {
  const ext = outpaint.extend;
  const fill = outpaint.fill ?? 'stretch';
  const overlap = outpaint.overlap ?? DEFAULT_OVERLAP;
  const blur = outpaint.blur ?? DEFAULT_SEAM_BLUR;
  const steps = extensionPasses(ext, outpaint.passSize ?? defaultPassSize(nativeSize));
  const base = withoutTasks(request);
  const units = unitsOnCanvas(request.control, request);
  return {
    passes: steps.length,
    pass: async (p, previous) => {
      const step = steps[p]!;
      // This pass's canvas inside the final one: the margins the later passes grow are cut off.
      const later = steps.slice(p + 1);
      const left = later.reduce((n, s) => n + s.left, 0);
      const top = later.reduce((n, s) => n + s.top, 0);
      const width = previous.width + step.left + step.right;
      const height = previous.height + step.top + step.bottom;
      const control = units.window({ x0: left, y0: top, x1: left + width, y1: top + height });
      const canvas = await extendCanvas(previous, step, fill, request.seed);
      const hard = outpaintMask(canvas.width, canvas.height, step, overlap);
      const soft = await blurMask(hard, canvas.width, canvas.height, blur);
      // Past twice the overlap the old picture stays exactly as it was.
      const guard = outpaintMask(canvas.width, canvas.height, step, 2 * overlap);
      const overlay = maskBytes(soft.map((v, i) => (guard[i] === 0 ? 0 : v)));
      return { ...base, ...(control ? { control } : {}), init: { ...base.init!, image: canvas }, mask: { values: hard, overlay }, width: canvas.width, height: canvas.height };
    },
  };
}
