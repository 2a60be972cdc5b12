import type { VaeDecoder } from './vae.js';

/** Tiles as diffusers' AutoencoderKL sizes them: the VAE's sample_size in pixels, overlapping by a quarter. */
export interface TileSizes {
  /** Tile side in latents (sample / the VAE's scale factor). */
  latent: number;
  /** Tile side in pixels (the VAE config's sample_size). */
  sample: number;
  overlap: number;
}

interface Plane {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

const f = Math.fround;

/**
 * diffusers' tiled_decode: latents cut into overlapping tiles, each decoded alone (bounded
 * memory at any size), neighbours blended linearly over the overlap — the tile above first,
 * then the one to the left (already blended itself), as diffusers does in place — and each
 * tile's top-left part kept. Latents that fit in one tile are decoded whole, as diffusers does.
 */
export async function tiledDecode(
  decoder: VaeDecoder,
  latents: Float32Array,
  dims: readonly [number, number, number],
  sizes: TileSizes,
): Promise<{ data: Float32Array; height: number; width: number }> {
  const [c, h, w] = dims;
  if (h <= sizes.latent && w <= sizes.latent) return decoder.decode(latents, dims);
  const step = Math.floor(sizes.latent * (1 - sizes.overlap));
  const blend = Math.floor(sizes.sample * sizes.overlap);
  const keep = sizes.sample - blend;
  const rows: Plane[][] = [];
  for (let i = 0; i < h; i += step) {
    const row: Plane[] = [];
    for (let j = 0; j < w; j += step) {
      const th = Math.min(sizes.latent, h - i);
      const tw = Math.min(sizes.latent, w - j);
      const tile = new Float32Array(c * th * tw);
      for (let ch = 0; ch < c; ch++) {
        for (let y = 0; y < th; y++) tile.set(latents.subarray((ch * h + i + y) * w + j, (ch * h + i + y) * w + j + tw), (ch * th + y) * tw);
      }
      const out = await decoder.decode(tile, [c, th, tw]);
      row.push({ data: out.data, channels: out.data.length / (out.height * out.width), height: out.height, width: out.width });
    }
    rows.push(row);
  }
  rows.forEach((row, i) =>
    row.forEach((tile, j) => {
      if (i > 0) blendRows(rows[i - 1]![j]!, tile, blend);
      if (j > 0) blendColumns(row[j - 1]!, tile, blend);
    }),
  );
  const channels = rows[0]![0]!.channels;
  const heights = rows.map((row) => Math.min(keep, row[0]!.height));
  const widths = rows[0]!.map((tile) => Math.min(keep, tile.width));
  const height = heights.reduce((a, b) => a + b, 0);
  const width = widths.reduce((a, b) => a + b, 0);
  const data = new Float32Array(channels * height * width);
  let top = 0;
  rows.forEach((row, i) => {
    let left = 0;
    row.forEach((tile, j) => {
      for (let ch = 0; ch < channels; ch++) {
        for (let y = 0; y < heights[i]!; y++) {
          const from = (ch * tile.height + y) * tile.width;
          data.set(tile.data.subarray(from, from + widths[j]!), (ch * height + top + y) * width + left);
        }
      }
      left += widths[j]!;
    });
    top += heights[i]!;
  });
  return { data, height, width };
}

/** diffusers' blend_v: the first rows of b fade in from the last rows of a. */
function blendRows(a: Plane, b: Plane, extent: number): void {
  const e = Math.min(a.height, b.height, extent);
  for (let y = 0; y < e; y++) {
    const wa = f(1 - y / e);
    const wb = f(y / e);
    for (let ch = 0; ch < b.channels; ch++) {
      const ra = (ch * a.height + a.height - e + y) * a.width;
      const rb = (ch * b.height + y) * b.width;
      for (let x = 0; x < b.width; x++) b.data[rb + x] = f(f(a.data[ra + x]! * wa) + f(b.data[rb + x]! * wb));
    }
  }
}

/** diffusers' blend_h: the first columns of b fade in from the last columns of a. */
function blendColumns(a: Plane, b: Plane, extent: number): void {
  const e = Math.min(a.width, b.width, extent);
  for (let x = 0; x < e; x++) {
    const wa = f(1 - x / e);
    const wb = f(x / e);
    for (let ch = 0; ch < b.channels; ch++) {
      for (let y = 0; y < b.height; y++) {
        const ia = (ch * a.height + y) * a.width + a.width - e + x;
        const ib = (ch * b.height + y) * b.width + x;
        b.data[ib] = f(f(a.data[ia]! * wa) + f(b.data[ib]! * wb));
      }
    }
  }
}
