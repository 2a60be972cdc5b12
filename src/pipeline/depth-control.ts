import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { createRaster, type Raster } from '../image/raster.js';
import { openSession, type SessionSettings } from '../onnx/session.js';
import { DepthEstimator, readProcessorConfig } from './depth-estimator.js';
import type { DepthMap } from './types.js';

/** The first of these folders holding a DPT depth estimator in SD2-depth's layout (depth_estimator/ + feature_extractor/). */
export function depthEstimatorFolder(dirs: readonly string[]): string | undefined {
  return dirs.find((d) => existsSync(join(d, 'depth_estimator', 'model.onnx')) && existsSync(join(d, 'feature_extractor', 'preprocessor_config.json')));
}

/**
 * A depth ControlNet's picture made by the DPT estimator in `dir`: its prediction at the processor's
 * size, stretched to 0…255 as sd-webui-controlnet's depth_midas does (depth − min, / max, × 255,
 * truncated to 8 bits), grey. The session is opened for the one picture and released.
 */
export async function depthControlPicture(dir: string, picture: Raster, settings: SessionSettings): Promise<Raster> {
  const opened = await openSession(join(dir, 'depth_estimator', 'model.onnx'), settings);
  try {
    const estimator = new DepthEstimator(opened, readProcessorConfig(join(dir, 'feature_extractor', 'preprocessor_config.json')));
    return depthToGrey(await estimator.estimate(picture));
  } finally {
    await opened.session.release();
  }
}

/** A depth map as 8-bit grey: min → 0, max → 255, in float32 as torch computes it. */
export function depthToGrey(depth: DepthMap): Raster {
  const f32 = Math.fround;
  let min = Infinity;
  for (const v of depth.values) min = Math.min(min, v);
  const shifted = depth.values.map((v) => f32(v - min));
  let max = 0;
  for (const v of shifted) max = Math.max(max, v);
  if (!(max > 0)) throw new UsageError('the depth estimator saw a flat picture (every pixel at one depth): give type=depth a picture with depth, or a depth map with type=none');
  const out = createRaster(depth.width, depth.height, 1);
  for (let i = 0; i < shifted.length; i++) out.data[i] = Math.min(255, Math.max(0, Math.trunc(f32(f32(shifted[i]! / max) * 255))));
  return out;
}
