import { join } from 'node:path';
import { normalizedPlanes } from '../image/processor-pixels.js';
import { hedEdges, type Projection } from '../image/preprocess/hed-edges.js';
import type { Raster } from '../image/raster.js';
import { floatTensor, toFloat32 } from '../onnx/dtype.js';
import { openSession, type SessionSettings } from '../onnx/session.js';

/**
 * A softedge ControlNet's picture: the HED network of a converted folder (src/graphs/hed-convert.ts)
 * run on the RGB picture as it is (0..255, no normalisation: the network subtracts its own `norm`),
 * its five projections turned into the 8-bit edge map by controlnet_aux's rules. The session is
 * opened for the one picture and released.
 */
export async function hedControlPicture(dir: string, picture: Raster, safe: boolean, settings: SessionSettings): Promise<Raster> {
  const opened = await openSession(join(dir, 'hed', 'model.onnx'), settings);
  try {
    const image = floatTensor('float32', normalizedPlanes(picture, undefined, undefined), [1, 3, picture.height, picture.width]);
    const names = [1, 2, 3, 4, 5].map((k) => `projection${k}`);
    const out = await opened.session.run({ image }, names);
    const projections: Projection[] = names.map((name) => {
      const t = out[name]!;
      return { values: toFloat32(t), height: t.dims[2]!, width: t.dims[3]! };
    });
    return hedEdges(projections, picture.width, picture.height, safe);
  } finally {
    await opened.session.release();
  }
}
