/**
 * AUTOMATIC1111's variation seeds: each image's starting noise is slerped towards the noise of
 * its variation seed. A1111 normalises along dim 1 of the per-image [C, H, W] tensor (so per
 * channel and column, over rows), and when the two are nearly parallel (mean dot > 0.9995) falls
 * back to low * strength + high * (1 - strength) — reproduced as written, including that the
 * fallback weights the two the other way round.
 */
export function slerpNoise(strength: number, low: Float32Array, high: Float32Array, dims: readonly [number, number, number]): Float32Array {
  const [c, h, w] = dims;
  const columns = c * w;
  const index = (ch: number, y: number, x: number) => (ch * h + y) * w + x;
  const dots = new Float64Array(columns);
  for (let ch = 0; ch < c; ch++) {
    for (let x = 0; x < w; x++) {
      let nl = 0;
      let nh = 0;
      for (let y = 0; y < h; y++) {
        nl += low[index(ch, y, x)]! ** 2;
        nh += high[index(ch, y, x)]! ** 2;
      }
      let dot = 0;
      for (let y = 0; y < h; y++) dot += (low[index(ch, y, x)]! / Math.sqrt(nl)) * (high[index(ch, y, x)]! / Math.sqrt(nh));
      dots[ch * w + x] = dot;
    }
  }
  const out = new Float32Array(low.length);
  const meanDot = dots.reduce((a, b) => a + b, 0) / columns;
  if (meanDot > 0.9995) {
    for (let i = 0; i < out.length; i++) out[i] = low[i]! * strength + high[i]! * (1 - strength);
    return out;
  }
  for (let ch = 0; ch < c; ch++) {
    for (let x = 0; x < w; x++) {
      const omega = Math.acos(Math.min(1, Math.max(-1, dots[ch * w + x]!)));
      const so = Math.sin(omega);
      const a = Math.sin((1 - strength) * omega) / so;
      const b = Math.sin(strength * omega) / so;
      for (let y = 0; y < h; y++) {
        const i = index(ch, y, x);
        out[i] = a * low[i]! + b * high[i]!;
      }
    }
  }
  return out;
}
