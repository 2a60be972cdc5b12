// Making a prompt's and a negative prompt's conditioning the same length, as A1111's CFG denoiser
// (modules/sd_samplers_cfg_denoiser.py). By default (both settings off) A1111 does not pad: when the
// lengths differ it runs the UNet on the two separately. Conditionings are row-major [tokens, width].

/**
 * "Pad prompt/negative prompt" (pad_cond_uncond): the shorter one gets whole copies of the empty
 * prompt's encoding (one 77-token chunk) appended until the lengths match.
 * "v0" (pad_cond_uncond_v0, A1111's padding before 1.6): only the negative side changes; it repeats its
 * last token vector, or is cut to the prompt's length.
 */
export type CondPadding = 'empty-chunks' | 'v0';

export function padCondUncond(cond: Float32Array, uncond: Float32Array, width: number, padding: CondPadding, emptyPrompt: Float32Array): { cond: Float32Array; uncond: Float32Array } {
  if (cond.length === uncond.length) return { cond, uncond };
  if (padding === 'v0') {
    if (uncond.length > cond.length) return { cond, uncond: uncond.slice(0, cond.length) };
    const out = new Float32Array(cond.length);
    out.set(uncond);
    const last = uncond.subarray(uncond.length - width);
    for (let at = uncond.length; at < out.length; at += width) out.set(last, at);
    return { cond, uncond: out };
  }
  const appendEmpty = (short: Float32Array, target: number): Float32Array => {
    // A1111 floors (difference // 77): lengths are whole chunks, so this is exact.
    const repeats = Math.floor((target - short.length) / emptyPrompt.length);
    const out = new Float32Array(short.length + repeats * emptyPrompt.length);
    out.set(short);
    for (let i = 0; i < repeats; i++) out.set(emptyPrompt, short.length + i * emptyPrompt.length);
    return out;
  };
  return cond.length < uncond.length
    ? { cond: appendEmpty(cond, uncond.length), uncond }
    : { cond, uncond: appendEmpty(uncond, cond.length) };
}
