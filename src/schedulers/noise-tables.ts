/**
 * The training sigmas AUTOMATIC1111 and ComfyUI compute for a model. Both start from the original
 * LDM code's float64 betas (ldm/modules/diffusionmodules/util.py make_beta_schedule, where
 * "linear" is diffusers' scaled_linear and "sqrt_linear" diffusers' linear) and a float64
 * cumulative product, then part ways:
 * - A1111: LatentDiffusion.register_schedule stores alphas_cumprod as float32, and k-diffusion's
 *   CompVisDenoiser takes ((1 - a) / a) ** 0.5 of that in float32;
 * - ComfyUI: ModelSamplingDiscrete takes the square root in float64 and rounds the sigmas once.
 * For SD 1.x that moves sigma_max from diffusers' 14.6146469 (float32 betas) to 14.6146421
 * (A1111) and 14.6146412 (ComfyUI), and ComfyUI's sigma_min from 0.0291675 to 0.0291672 (1.3e-5
 * relative) — differences that reach every k-schedule.
 * diffusers' own float32 table is model.ts's.
 */
import type { ClassConfig } from './diffusers-classes.js';

const f32 = Math.fround;

/** torch.linspace(start, end, n, dtype=torch.float64): the first half from start, the second back from end. */
function linspace64(start: number, end: number, n: number): Float64Array {
  const out = new Float64Array(n);
  if (n === 1) {
    out[0] = start;
    return out;
  }
  const step = (end - start) / (n - 1);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? start + step * i : end - step * (n - 1 - i);
  return out;
}

/** LDM's float64 betas for a diffusers beta_schedule; undefined for one the LDM code has no equivalent of. */
function ldmBetas(config: ClassConfig): Float64Array | undefined {
  const n = config.num_train_timesteps;
  if (config.trained_betas) return Float64Array.from(config.trained_betas);
  switch (config.beta_schedule) {
    case 'scaled_linear':
      return linspace64(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), n).map((b) => b * b);
    case 'linear':
      return linspace64(config.beta_start, config.beta_end, n);
    case 'squaredcos_cap_v2': {
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
      return Float64Array.from({ length: n }, (_, i) => Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
    }
    default:
      return undefined;
  }
}

/**
 * alphas_cumprod (float32, as each tool stores it) and sigmas of A1111's or ComfyUI's table;
 * undefined where the tool has no such model (zero terminal SNR is a sampling option in both,
 * not a property of the betas).
 */
export function ldmTable(config: ClassConfig, tool: 'a1111' | 'comfyui'): { alphasCumprod: Float64Array; sigmas: Float64Array } | undefined {
  const betas = config.rescale_betas_zero_snr ? undefined : ldmBetas(config);
  if (!betas) return undefined;
  const cumprod = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) cumprod[i] = acc *= 1 - betas[i];
  const alphasCumprod = cumprod.map(f32);
  const sigmas =
    tool === 'a1111'
      ? alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))))
      : cumprod.map((a) => f32(Math.sqrt((1 - a) / a)));
  return { alphasCumprod, sigmas };
}
