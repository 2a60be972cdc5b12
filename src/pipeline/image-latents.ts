import { ModelLoadError } from '../errors.js';
import { rasterToTensor } from '../image/tensor-image.js';
import type { Raster } from '../image/raster.js';
import type { ModelBundle } from './bundle.js';

const f = Math.fround;

/**
 * An image to scaled latents as diffusers' retrieve_latents does: the encoder's Gaussian
 * (mean, logvar clamped to [-30, 20], std = exp(logvar / 2)), its mean or a sample
 * mean + std * eps with eps drawn from the seeded generator, times the VAE scaling factor.
 */
export async function encodeImage(
  bundle: ModelBundle,
  pixels: Float32Array,
  height: number,
  width: number,
  mode: 'sample' | 'mean',
  draw: (n: number) => Float32Array,
): Promise<Float32Array> {
  const encoder = bundle.vaeEncoder;
  if (!encoder) throw new ModelLoadError('this model has no vae_encoder/model.onnx, which img2img and inpaint need');
  const out = await encoder.encode(pixels, height, width);
  if (encoder.output === 'sample') return out.data.map((v) => f(v * f(bundle.vaeScale)));
  return latentsFromParameters(out.data, bundle.vaeScale, mode === 'sample' ? draw(out.data.length / 2) : undefined);
}

/**
 * The encoder's (mean, logvar) → scaled latents: the mean, or with `eps` the sample
 * mean + exp(clamp(logvar, -30, 20) / 2) · eps, times the scaling factor, in float32.
 */
export function latentsFromParameters(parameters: Float32Array, scalingFactor: number, eps: Float32Array | undefined): Float32Array {
  const scale = f(scalingFactor);
  const n = parameters.length / 2;
  const mean = parameters.subarray(0, n);
  const logvar = parameters.subarray(n);
  const latents = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const value = eps ? f(mean[i]! + f(f(Math.exp(f(0.5 * Math.min(Math.max(logvar[i]!, -30), 20)))) * eps[i]!)) : mean[i]!;
    latents[i] = f(value * scale);
  }
  return latents;
}

/** The VAE encoder's input for a raster: CHW in [-1, 1], as diffusers' preprocess gives. */
export function imagePixels(image: Raster): Float32Array {
  return rasterToTensor(image);
}

/** diffusers' mask processor: 1 where the mask is at least 0.5, else 0. */
export function binariseMask(values: Float32Array): Float32Array {
  return values.map((v) => (v >= 0.5 ? 1 : 0));
}

/** torch.nn.functional.interpolate(mode='nearest') of a [H, W] plane to [h, w]. */
export function nearestResize(plane: Float32Array, height: number, width: number, outHeight: number, outWidth: number): Float32Array {
  const out = new Float32Array(outHeight * outWidth);
  for (let y = 0; y < outHeight; y++) {
    const sy = Math.min(Math.floor((y * height) / outHeight), height - 1);
    for (let x = 0; x < outWidth; x++) {
      out[y * outWidth + x] = plane[sy * width + Math.min(Math.floor((x * width) / outWidth), width - 1)]!;
    }
  }
  return out;
}

/** diffusers' masked_image = image * (mask < 0.5): the repainted area becomes 0 (mid-grey). */
export function maskedPixels(pixels: Float32Array, mask: Float32Array): Float32Array {
  const plane = mask.length;
  return pixels.map((v, i) => (mask[i % plane]! < 0.5 ? v : 0));
}
