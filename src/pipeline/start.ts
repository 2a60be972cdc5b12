import type { SamplingPlan } from '../schedulers/index.js';
import { binariseMask, encodeImage, imagePixels, maskedPixels, nearestResize } from './image-latents.js';
import type { ModelBundle } from './bundle.js';
import type { BatchNoise } from './noise.js';
import type { PassRequest } from './types.js';
import { depthChannel } from './depth-map.js';
import { UsageError } from '../errors.js';

/** Where sampling starts, and what img2img/inpaint carry through the loop. */
export interface Start {
  /** Sigma-space latents the sampler starts from, [batch, C, h, w]. */
  x: Float32Array;
  /** The init image's scaled latents, repeated for the batch. */
  image?: Float32Array;
  /**
   * The extra input channels per image: inpainting UNets' mask and masked-image latents
   * [batch, 1 + C, h, w]; depth UNets' depth [batch, 1, h, w].
   */
  extraChannels?: Float32Array;
  /** Other UNets with a mask: 1 where the image is kept, per latent pixel [h, w]. */
  keep?: Float32Array;
}

function repeat(data: Float32Array, times: number): Float32Array {
  const out = new Float32Array(data.length * times);
  for (let i = 0; i < times; i++) out.set(data, i * data.length);
  return out;
}

/**
 * The starting latents of txt2img, img2img, inpaint and a hires fix's second pass (its upscaled
 * latents noised with the seed's first draw, as A1111's fresh ImageRNG gives), drawing from the seeded generator in
 * the order diffusers' pipelines do: the init image's posterior sample, then the noise, then
 * (inpainting UNets) the masked image's posterior sample. At strength 1 an inpainting run starts
 * from pure noise (diffusers' is_strength_max), while img2img still noises the image.
 */
export async function startingPoint(
  bundle: ModelBundle,
  request: PassRequest,
  plan: SamplingPlan,
  noise: BatchNoise,
  latentDims: readonly [number, number, number],
): Promise<Start> {
  const batch = request.batchSize;
  const { init, mask } = request;
  const depth = await depthInput(bundle, request, latentDims);
  if (request.latentInit) return { x: plan.startLatents(noise.initial(), request.latentInit.latents) };
  if (!init) {
    const initial = request.initialLatents?.values ?? noise.initial();
    return { x: plan.startLatents(initial) };
  }
  const { width, height } = request;
  const pixels = imagePixels(init.image);
  const inpaintingUnet = Boolean(mask) && bundle.unet.inChannels === 9;
  const encode = (p: Float32Array) => encodeImage(bundle, p, height, width, init.latents, noise.single);
  const fromPureNoise = Boolean(mask) && init.strength >= 1;
  const encoded = inpaintingUnet && fromPureNoise ? undefined : repeat(await encode(pixels), batch);
  const drawn = noise.initial();
  const [, h, w] = latentDims;
  const binary = mask ? binariseMask(mask.values) : undefined;
  const latentMask = binary ? nearestResize(binary, height, width, h, w) : undefined;
  const image = encoded && latentMask && init.maskedContent ? fillMaskedLatents(encoded, drawn, latentMask, init.maskedContent) : encoded;
  const x = fromPureNoise || !image ? plan.startLatents(drawn) : plan.startLatents(drawn, image);
  if (depth) return { x, ...(image ? { image } : {}), extraChannels: repeat(depth, batch) };
  if (!binary || !latentMask) return { x, ...(image ? { image } : {}) };

  if (inpaintingUnet) {
    const masked = await encode(maskedPixels(pixels, binary));
    const perImage = latentMask.length + masked.length;
    const extraChannels = new Float32Array(perImage * batch);
    for (let b = 0; b < batch; b++) {
      extraChannels.set(latentMask, b * perImage);
      extraChannels.set(masked, b * perImage + latentMask.length);
    }
    return { x, ...(image ? { image } : {}), extraChannels };
  }
  return { x, ...(image ? { image } : {}), keep: latentMask.map((v) => 1 - v) };
}

/** A1111's latent noise / latent nothing: the masked latents replaced by the seed's noise or by zeros. */
function fillMaskedLatents(image: Float32Array, noise: Float32Array, mask: Float32Array, content: 'latent-noise' | 'latent-nothing'): Float32Array {
  const plane = mask.length;
  return image.map((v, i) => (mask[i % plane]! >= 0.5 ? (content === 'latent-noise' ? noise[i]! : 0) : v));
}

/**
 * The depth channel when the UNet takes one (latent channels + 1 inputs), checked both ways: a
 * depth UNet cannot run without depth, and a map means nothing to other UNets. Without a map the
 * model's own estimator reads the init image, as diffusers does.
 */
async function depthInput(bundle: ModelBundle, request: PassRequest, [c, h, w]: readonly [number, number, number]): Promise<Float32Array | undefined> {
  const depthUnet = bundle.unet.inChannels === c + 1;
  if (!depthUnet) {
    if (!request.depth) return undefined;
    throw new UsageError(`depth2img needs a depth-conditioned model (a UNet with ${c + 1} input channels, e.g. stabilityai/stable-diffusion-2-depth); this one takes ${bundle.unet.inChannels ?? 'an unknown number of'}`);
  }
  if (!request.init) throw new UsageError('this model is depth-conditioned (its UNet takes a depth channel): use `diffuse depth2img` with --init-image');
  const depth = request.depth ?? (await bundle.depthEstimator?.estimate(request.init.image));
  if (!depth) throw new UsageError('this depth model has no depth_estimator/: pass --depth-map');
  return depthChannel(depth, h, w);
}
