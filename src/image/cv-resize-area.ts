// cv2.resize(src, (width, height), interpolation=cv2.INTER_AREA) when shrinking, as OpenCV 4.x computes it
// (imgproc/src/resize.cpp). Whole-number factors on both axes (resizeAreaFast_): each destination sample is the
// sum of its block (row by row, four samples added together and then to the sum, as the unrolled loop does) times
// float32 1 / area (halving: the SIMD kernels' arithmetic, below). Other factors (computeResizeAreaTab, ResizeArea_Invoker): each destination cell [d * scale,
// (d + 1) * scale) takes every source sample it covers weighted by the covered fraction / the cell's size (float32
// weights computed in double); a row's weighted samples are summed in float32, then the rows weighted the same way.
// 8-bit results are rounded to nearest (ties to even) and clamped. Enlarging (a factor below 1 on either axis) is
// not this code: OpenCV then runs bilinear interpolation instead.

import type { Samples } from './cv-resize-lanczos.js';

const f = Math.fround;

interface Weight {
  dst: number;
  src: number;
  alpha: number;
}

/** computeResizeAreaTab for one axis. */
function areaTable(from: number, to: number, scale: number): Weight[] {
  const table: Weight[] = [];
  for (let d = 0; d < to; d++) {
    const fs1 = d * scale;
    const fs2 = fs1 + scale;
    const cell = Math.min(scale, from - fs1);
    let s2 = Math.floor(fs2);
    s2 = Math.min(s2, from - 1);
    const s1 = Math.min(Math.ceil(fs1), s2);
    if (s1 - fs1 > 1e-3) table.push({ dst: d, src: s1 - 1, alpha: f((s1 - fs1) / cell) });
    for (let s = s1; s < s2; s++) table.push({ dst: d, src: s, alpha: f(1 / cell) });
    if (fs2 - s2 > 1e-3) table.push({ dst: d, src: s2, alpha: f(Math.min(Math.min(fs2 - s2, 1), cell) / cell) });
  }
  return table;
}

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function store<T extends Uint8Array | Float32Array>(out: T, at: number, v: number): void {
  out[at] = out instanceof Uint8Array ? Math.max(0, Math.min(255, roundHalfEven(v))) : v;
}

function areaFast<T extends Uint8Array | Float32Array>(src: Samples<T>, sx: number, sy: number, out: Samples<T>): void {
  const { width, channels: cn } = src;
  const area = sx * sy;
  const scale = f(1 / area);
  const fixed = src.data instanceof Uint8Array;
  const offsets: number[] = [];
  for (let y = 0; y < sy; y++) for (let x = 0; x < sx; x++) offsets.push(y * width * cn + x * cn);
  const add = (a: number, b: number) => (fixed ? a + b : f(a + b));
  // Halving has SIMD kernels: 8-bit (a + b + c + d + 2) >> 2; one-channel float ((a + b) + (c + d)) * 0.25 in
  // 4-lane steps, the row's last width % 4 samples by the general loop.
  const halving = sx === 2 && sy === 2 && (fixed || cn === 1);
  const vectorEnd = out.width * cn - ((out.width * cn) % 4);
  for (let dy = 0; dy < out.height; dy++) {
    for (let dx = 0; dx < out.width * cn; dx++) {
      const base = dy * sy * width * cn + Math.floor(dx / cn) * sx * cn + (dx % cn);
      if (halving && (fixed || dx < vectorEnd)) {
        const [a, b, c, d] = [src.data[base]!, src.data[base + cn]!, src.data[base + width * cn]!, src.data[base + width * cn + cn]!];
        out.data[dy * out.width * cn + dx] = fixed ? (a + b + c + d + 2) >> 2 : f(f(f(a + b) + f(c + d)) * 0.25);
        continue;
      }
      let sum = 0;
      let k = 0;
      for (; k <= area - 4; k += 4) {
        const four = add(add(add(src.data[base + offsets[k]!]!, src.data[base + offsets[k + 1]!]!), src.data[base + offsets[k + 2]!]!), src.data[base + offsets[k + 3]!]!);
        sum = add(sum, four);
      }
      for (; k < area; k++) sum = add(sum, src.data[base + offsets[k]!]!);
      store(out.data, dy * out.width * cn + dx, f(sum * scale));
    }
  }
}

function areaGeneral<T extends Uint8Array | Float32Array>(src: Samples<T>, scaleX: number, scaleY: number, out: Samples<T>): void {
  const { width, height, channels: cn } = src;
  const xs = areaTable(width, out.width, scaleX);
  const ys = areaTable(height, out.height, scaleY);
  const length = out.width * cn;
  const buf = new Float32Array(length);
  const sum = new Float32Array(length);
  let previous = ys[0]!.dst;
  const flush = (dy: number) => {
    for (let x = 0; x < length; x++) store(out.data, dy * length + x, sum[x]!);
  };
  for (const { dst: dy, src: sy, alpha: beta } of ys) {
    buf.fill(0);
    const base = sy * width * cn;
    for (const { dst, src: s, alpha } of xs) for (let c = 0; c < cn; c++) buf[dst * cn + c] = f(buf[dst * cn + c]! + f(src.data[base + s * cn + c]! * alpha));
    if (dy !== previous) {
      flush(previous);
      for (let x = 0; x < length; x++) sum[x] = f(beta * buf[x]!);
      previous = dy;
    } else {
      for (let x = 0; x < length; x++) sum[x] = f(sum[x]! + f(beta * buf[x]!));
    }
  }
  flush(previous);
}

export function cvResizeArea<T extends Uint8Array | Float32Array>(src: Samples<T>, outWidth: number, outHeight: number): Samples<T> {
  const { width, height, channels: cn } = src;
  if (src.data.length !== width * height * cn) throw new RangeError(`cvResizeArea: ${src.data.length} values for ${width}x${height}x${cn}`);
  if (width === outWidth && height === outHeight) return { ...src, data: src.data.slice() as T };
  const scaleX = 1 / (outWidth / width);
  const scaleY = 1 / (outHeight / height);
  if (scaleX < 1 || scaleY < 1) throw new RangeError(`cvResizeArea: ${width}x${height} -> ${outWidth}x${outHeight} enlarges (OpenCV interpolates bilinearly there)`);
  const out: Samples<T> = { data: (src.data instanceof Uint8Array ? new Uint8Array(outWidth * outHeight * cn) : new Float32Array(outWidth * outHeight * cn)) as T, width: outWidth, height: outHeight, channels: cn };
  const ix = Math.round(scaleX);
  const iy = Math.round(scaleY);
  if (Math.abs(scaleX - ix) < Number.EPSILON && Math.abs(scaleY - iy) < Number.EPSILON) areaFast(src, ix, iy, out);
  else areaGeneral(src, scaleX, scaleY, out);
  return out;
}
