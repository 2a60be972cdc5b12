// sd-webui-controlnet's scribble_hed and scribble_pidinet after the soft-edge map (hed()'s or pidinet()'s, cropped):
// nms(map, 127, 3.0), then cv2.GaussianBlur((0, 0), 3.0) of that uint8 map (the fixed-point path), then 255 where the
// blur is above 4, 0 elsewhere: thick lines along the edges' ridges.

import { gaussianBlurU8 } from '../cv-gaussian-u8.js';
import { createRaster, type Raster } from '../raster.js';
import { nms } from './nms.js';

export function scribbleFromEdges(edges: Raster): Raster {
  const ridges = nms(edges, 127, 3.0);
  const blurred = gaussianBlurU8(ridges, 3.0).data;
  const out = createRaster(edges.width, edges.height, 1);
  for (let i = 0; i < blurred.length; i++) out.data[i] = blurred[i]! > 4 ? 255 : 0;
  return out;
}
