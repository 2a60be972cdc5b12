// controlnet_aux's HEDdetector after the network (hed/__init__.py, the same as sd-webui-controlnet's
// annotator/hed): each of the five projections resized to the picture by cv2 INTER_LINEAR, their
// mean in float32 (numpy sums the five in order, then divides), the logistic sigmoid in float64, and
// edge * 255 clipped and truncated to 8 bits. `safe` (softedge_hedsafe) first quantises the edge with
// util.safe_step (./safe-step.ts), so the map holds 0, 127 and 255.

import { cvResizeLinear } from '../cv-resize.js';
import { createRaster, type Raster } from '../raster.js';
import { safeStep } from './safe-step.js';

export interface Projection {
  values: Float32Array;
  width: number;
  height: number;
}

const f = Math.fround;

export function hedEdges(projections: readonly Projection[], width: number, height: number, safe: boolean): Raster {
  const planes = projections.map((p) => cvResizeLinear(p.values, p.width, p.height, width, height));
  const count = f(planes.length);
  const out = createRaster(width, height, 1);
  for (let i = 0; i < width * height; i++) {
    let sum = planes[0]![i]!;
    for (let k = 1; k < planes.length; k++) sum = f(sum + planes[k]![i]!);
    const edge = 1 / (1 + Math.exp(-f(sum / count)));
    const scaled = safe ? f(safeStep(edge) * 255) : edge * 255;
    out.data[i] = Math.trunc(Math.min(255, Math.max(0, scaled)));
  }
  return out;
}
