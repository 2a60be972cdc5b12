// annotator/pidinet's apply_pidinet (the same as controlnet_aux's PidiNetDetector) after the network: the fused edge
// (float32, 0..1), through util.safe_step when `safe` (softedge_pidisafe), times 255 in float32, clipped and
// truncated to 8 bits.

import { createRaster, type Raster } from '../raster.js';
import { safeStep } from './safe-step.js';

export function pidinetEdges(edge: Float32Array, width: number, height: number, safe: boolean): Raster {
  if (edge.length !== width * height) throw new RangeError(`pidinetEdges: ${edge.length} values for ${width}x${height}`);
  const out = createRaster(width, height, 1);
  for (let i = 0; i < edge.length; i++) {
    const scaled = Math.fround((safe ? safeStep(edge[i]!) : edge[i]!) * 255);
    out.data[i] = Math.trunc(Math.min(255, Math.max(0, scaled)));
  }
  return out;
}
