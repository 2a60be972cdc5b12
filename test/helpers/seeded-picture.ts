import type { Raster } from '../../src/image/raster.js';

// Pictures made from a seed by integer arithmetic alone, so that tools/make_cv_resize_u8_refs.py makes the same
// bytes in numpy: a 32-bit LCG (Numerical Recipes' constants), its top byte per draw.

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
}

export type SeededKind = 'noise' | 'photo' | 'cells';

/**
 * 'noise': every sample a draw. 'photo': per channel a 6x5 grid of draws stretched over the picture by integer
 * bilinear interpolation (floored), plus a draw mod 9 − 4 of noise, clamped: smooth areas, soft edges, grain.
 * 'cells': the same grid without interpolation (cell floor(x · 6 / width), floor(y · 5 / height)) plus the noise:
 * flat patches with hard edges, what edge preprocessors find.
 */
export function seededPicture(width: number, height: number, seed: number, kind: SeededKind): Raster {
  const next = lcg(seed);
  const data = new Uint8Array(width * height * 3);
  if (kind === 'noise') {
    for (let i = 0; i < data.length; i++) data[i] = next();
    return { width, height, channels: 3, data };
  }
  const gw = 6;
  const gh = 5;
  const grids = [0, 1, 2].map(() => Array.from({ length: gw * gh }, next));
  const dx = width - 1;
  const dy = height - 1;
  for (let y = 0; y < height; y++) {
    const iy = Math.floor((y * (gh - 1)) / dy);
    const ry = (y * (gh - 1)) % dy;
    const iy1 = Math.min(iy + 1, gh - 1);
    for (let x = 0; x < width; x++) {
      const ix = Math.floor((x * (gw - 1)) / dx);
      const rx = (x * (gw - 1)) % dx;
      const ix1 = Math.min(ix + 1, gw - 1);
      for (let c = 0; c < 3; c++) {
        const g = grids[c]!;
        const smooth = () => {
          const v = g[iy * gw + ix]! * (dx - rx) * (dy - ry) + g[iy * gw + ix1]! * rx * (dy - ry) + g[iy1 * gw + ix]! * (dx - rx) * ry + g[iy1 * gw + ix1]! * rx * ry;
          return Math.floor(v / (dx * dy));
        };
        const cell = () => g[Math.floor((y * gh) / height) * gw + Math.floor((x * gw) / width)]!;
        const noisy = (kind === 'cells' ? cell() : smooth()) + (next() % 9) - 4;
        data[(y * width + x) * 3 + c] = Math.min(255, Math.max(0, noisy));
      }
    }
  }
  return { width, height, channels: 3, data };
}
