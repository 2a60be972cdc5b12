// OpenCV's general INTER_AREA shrink (imgproc/src/resize.cpp: computeResizeAreaTab, ResizeArea_Invoker), shared by
// the float plane's resize (cv-resize-area.ts) and the 8-bit picture's (cv-resize-u8.ts), which differ only in how
// the float32 sums are stored.

const f = Math.fround;

interface AreaTap {
  target: number;
  source: number;
  weight: number;
}

/** computeResizeAreaTab: the source samples each target cell [d·scale, d·scale + scale) covers, with their float32 weights. */
function areaTaps(from: number, to: number, scale: number): AreaTap[] {
  const taps: AreaTap[] = [];
  for (let d = 0; d < to; d++) {
    const start = d * scale;
    const end = start + scale;
    const cell = Math.min(scale, from - start);
    const last = Math.min(Math.floor(end), from - 1);
    const first = Math.min(Math.ceil(start), last);
    if (first - start > 1e-3) taps.push({ target: d, source: first - 1, weight: f((first - start) / cell) });
    for (let s = first; s < last; s++) taps.push({ target: d, source: s, weight: f(1 / cell) });
    if (end - last > 1e-3) taps.push({ target: d, source: last, weight: f(Math.min(end - last, 1, cell) / cell) });
  }
  return taps;
}

/**
 * The float32 sums of the general path for interleaved samples (`channels` per pixel): each source row's weighted
 * samples summed in table order, then the rows into their target row the same way. `store(targetRow, sums)` receives
 * each finished target row.
 */
export function areaRows(
  data: ArrayLike<number>, width: number, height: number, channels: number, outWidth: number, outHeight: number, scaleX: number, scaleY: number,
  store: (targetRow: number, sums: Float32Array) => void,
): void {
  const n = channels;
  const xs = areaTaps(width, outWidth, scaleX);
  const ys = areaTaps(height, outHeight, scaleY);
  const row = new Float32Array(outWidth * n);
  const sum = new Float32Array(outWidth * n);
  let current = ys[0]!.target;
  for (const { target: dy, source: sy, weight: beta } of ys) {
    row.fill(0);
    const base = sy * width * n;
    for (const { target, source, weight } of xs) {
      for (let c = 0; c < n; c++) row[target * n + c] = f(row[target * n + c]! + f(data[base + source * n + c]! * weight));
    }
    if (dy !== current) {
      store(current, sum);
      for (let i = 0; i < sum.length; i++) sum[i] = f(beta * row[i]!);
      current = dy;
    } else {
      for (let i = 0; i < sum.length; i++) sum[i] = f(sum[i]! + f(beta * row[i]!));
    }
  }
  store(current, sum);
}
