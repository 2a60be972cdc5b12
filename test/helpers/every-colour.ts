import type { Raster } from '../../src/image/raster.js';

/**
 * All 2^24 byte triples, one per pixel of a 4096x4096 raster, pixel i holding ((i >> 16) & 255, (i >> 8) & 255,
 * i & 255): the exhaustive input whose OpenCV conversions the reference scripts store as SHA-256 hashes.
 */
export function everyColour(): Raster {
  const n = 1 << 24;
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    data[3 * i] = i >>> 16;
    data[3 * i + 1] = (i >>> 8) & 255;
    data[3 * i + 2] = i & 255;
  }
  return { width: 4096, height: 4096, channels: 3, data };
}
