/**
 * diffusers' get_guidance_scale_embedding: the sinusoidal embedding of a guidance weight that
 * LCM-distilled UNets take as `timestep_cond`, computed step by step in float32 as torch does.
 *
 * torch's float32 exp/sin/cos come from MKL VML on x86 (within about 0.52 ulp) and Sleef elsewhere,
 * so their last bit depends on the torch build; every step here is instead the correctly rounded
 * float32 of the exact result, which agrees with any of them to the one rounding they may differ by.
 */
export function guidanceScaleEmbedding(w: number, dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  if (half < 2) throw new RangeError(`guidance embedding width must be at least 4, got ${dim}`);
  const f = Math.fround;
  // w = torch.tensor(w) * 1000.0, in float32.
  const scaled = f(f(w) * 1000);
  // torch.log(torch.tensor(10000.0)) / (half_dim - 1): a float32 logarithm, then a float32 division.
  const step = f(f(Math.log(10000)) / (half - 1));
  const out = new Float32Array(dim); // an odd width keeps its last (zero-padded) entry 0
  for (let i = 0; i < half; i++) {
    const frequency = f(Math.exp(f(i * -step)));
    const angle = f(scaled * frequency);
    out[i] = Math.sin(angle);
    out[half + i] = Math.cos(angle);
  }
  return out;
}
