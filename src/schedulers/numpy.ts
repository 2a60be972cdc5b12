/** numpy's float64 array helpers as the Python references call them, element for element. */

/** np.linspace(start, stop, n) in float64: start + i * step, the last element exactly stop. */
export function numpyLinspace(start: number, stop: number, n: number, endpoint = true): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const div = endpoint ? n - 1 : n;
  const step = (stop - start) / div;
  for (let i = 0; i < n; i++) out[i] = i * step + start;
  if (endpoint && n > 1) out[n - 1] = stop;
  return out;
}

/** np.arange(start, 0, -step) with a float step, as numpy sizes it: ceil(start / step) elements. */
export function numpyArangeDown(start: number, step: number): Float64Array {
  const n = Math.ceil(start / step);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = start - i * step;
  return out;
}

/** np.interp(x, xp, fp) for ascending xp, numpy's formula (slope times offset from the left knot). */
export function numpyInterp(x: number, xp: Float64Array, fp: ArrayLike<number>): number {
  const last = xp.length - 1;
  if (x <= xp[0]) return fp[0];
  if (x >= xp[last]) return fp[last];
  let j = 0;
  while (xp[j + 1] <= x) j++;
  if (xp[j] === x) return fp[j];
  const slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
  return slope * (x - xp[j]) + fp[j];
}
