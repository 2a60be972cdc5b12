import { join } from 'node:path';
import { normalizedPlanes } from '../image/processor-pixels.js';
import { hedEdges, type Projection } from '../image/preprocess/hed-edges.js';
import { cropTopLeft, padEdge } from '../image/pad-edge.js';
import type { Raster } from '../image/raster.js';
import { floatTensor, toFloat32 } from '../onnx/dtype.js';
import { openSession, type SessionSettings } from '../onnx/session.js';

/**
 * A softedge ControlNet's picture as sd-webui-controlnet's hed() makes it at Preprocessor Resolution =
 * the picture's shorter side: the picture edge-padded to multiples of 64 (resize_image_with_pad at scale
 * 1), the HED network of a converted folder (src/graphs/hed-convert.ts) run on it as RGB 0..255 (the
 * network subtracts its own `norm`), the five projections turned into the 8-bit edge map by
 * annotator/hed's rules (= controlnet_aux's HEDdetector), the padding cropped off. The session is
 * opened for the one picture and released.
 */
/** sd-webui-controlnet's pad64: what brings a side up to a multiple of 64. */
const pad64 = (side: number): number => Math.ceil(side / 64) * 64 - side;

export async function hedControlPicture(dir: string, picture: Raster, safe: boolean, settings: SessionSettings): Promise<Raster> {
  const opened = await openSession(join(dir, 'hed', 'model.onnx'), settings);
  try {
    const padded = padEdge(picture, pad64(picture.width), pad64(picture.height));
    const image = floatTensor('float32', normalizedPlanes(padded, undefined, undefined), [1, 3, padded.height, padded.width]);
    const names = [1, 2, 3, 4, 5].map((k) => `projection${k}`);
    const out = await opened.session.run({ image }, names);
    const projections: Projection[] = names.map((name) => {
      const t = out[name]!;
      return { values: toFloat32(t), height: t.dims[2]!, width: t.dims[3]! };
    });
    return cropTopLeft(hedEdges(projections, padded.width, padded.height, safe), picture.width, picture.height);
  } finally {
    await opened.session.release();
  }
}
