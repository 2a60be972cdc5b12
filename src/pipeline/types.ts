import type { Raster } from '../image/raster.js';
import type { RngKind } from '../rng/types.js';
import type { CondPadding } from '../text/prompt-pad.js';

/**
 * How the images of one batch get their noise. 'a1111': image i uses seed + i with its own
 * generator (AUTOMATIC1111, ComfyUI's batch index convention aside). 'diffusers': one generator
 * seeded once draws the whole batch tensor, as a diffusers pipeline given one torch.Generator.
 */
export type SeedMode = 'a1111' | 'diffusers';

/**
 * How a prompt's syntax is read. 'a1111': AUTOMATIC1111's grammar (emphasis, BREAK, prompt
 * editing) in 75-token chunks, weights with its mean restoration. 'comfy': the same parse with
 * ComfyUI's weighting (towards the empty prompt's encoding). 'none': the text as diffusers'
 * pipeline reads it, one 77-token window, truncated.
 */
export type PromptWeighting = 'a1111' | 'comfy' | 'none';

export type SdeNoise = 'brownian' | 'plain';

export type StrengthMode = 'diffusers' | 'a1111';

/** One call of the pipeline: every setting of every image it makes. */
export interface GenerationRequest {
  prompt: string;
  negativePrompt: string;
  /** How prompt syntax is read (default 'a1111'; 'none' is diffusers' plain 77-token window). */
  promptWeighting?: PromptWeighting;
  /**
   * Prompt and negative prompt of different lengths: two UNet calls ('none', A1111's default), or
   * padded to one length with empty-prompt chunks or the v0 way (A1111's two options).
   */
  condPadding?: 'none' | CondPadding;
  steps: number;
  cfgScale: number;
  /** Guidance rescale (diffusers' guidance_rescale, for zero-terminal-SNR v-models); 0 is off. */
  cfgRescale: number;
  /** Seed of the first image. */
  seed: number;
  rng: RngKind;
  seedMode: SeedMode;
  /** Canonical sampler and schedule ids (see src/schedulers/names.ts). */
  sampler: string;
  schedule: string;
  /**
   * Where SDE samplers (dpmpp_sde, dpmpp_2m_sde, dpmpp_3m_sde) get their noise: k-diffusion's
   * Brownian tree seeded like the images (default; A1111, ComfyUI, diffusers' DPMSolverSDEScheduler
   * with noise_sampler_seed), or plain draws continuing the seed's stream (diffusers'
   * DPMSolverMultistepScheduler with sde-dpmsolver++).
   */
  sdeNoise?: SdeNoise;
  /**
   * A1111's "Eta noise seed delta" (ENSD): after the starting noise, the noise drawn during the
   * loop (ancestral and DDIM-eta steps) comes from generators re-seeded with seed + ensd.
   */
  ensd?: number;
  /** Ancestral/DDIM eta; the sampler's own default when undefined. */
  eta?: number;
  /** A1111's and ComfyUI's DPM2 drop the next-to-last sigma; set by resolveSampler. */
  discardPenultimateSigma?: boolean;
  width: number;
  height: number;
  batchSize: number;
  /** AUTOMATIC1111's variation: image i's noise is slerped towards the noise of seed + i. */
  variation?: { seed: number; strength: number };
  /** Decode in overlapping tiles (diffusers' tiled_decode): bounded memory at large sizes. */
  vaeTiling?: boolean;
  /** img2img and inpaint: the picture to start from. */
  init?: InitImage;
  /** inpaint: which pixels to repaint. */
  mask?: InpaintMask;
  /** depth2img: the depth the picture follows (depth-conditioned UNets only). */
  depth?: DepthMap;
  /**
   * Start from these latents instead of drawing noise, [batch, C, h, w] flattened
   * (diffusers' `latents=` argument: still multiplied by the initial noise sigma).
   */
  initialNoise?: Float32Array;
}

export interface InitImage {
  /** RGB at exactly the request's width and height (the command resizes). */
  image: Raster;
  /** How much of the schedule runs: 0 returns the VAE round trip, 1 starts from the noisiest step. */
  strength: number;
  /**
   * How strength becomes steps: diffusers' int(steps × strength) steps (default), or A1111's
   * int(min(strength, 0.999) × steps) + 1 from the same schedule.
   */
  strengthMode?: StrengthMode;
  /** The encoder's mean, or a draw from its distribution with the seed (diffusers' default). */
  latents: 'sample' | 'mean';
  /**
   * inpaint: what the masked area starts from in latent space (A1111's "Masked content"): the
   * picture's own latents (default), the seed's noise, or zeros.
   */
  maskedContent?: 'latent-noise' | 'latent-nothing';
}

/** A depth map at any size and in any units (larger = nearer, as DPT/MiDaS), [height, width] row-major. */
export interface DepthMap {
  values: Float32Array;
  width: number;
  height: number;
}

export interface InpaintMask {
  /** [height, width]: 1 repaints, 0 keeps; binarised at 0.5 for the model, as diffusers does. */
  values: Float32Array;
  /**
   * [height, width] in [0, 1]: the result is blended into the original through it (A1111's
   * overlay), so every pixel where it is 0 keeps its original value exactly. Usually the
   * blurred mask; absent, the model's output is returned as is (diffusers).
   */
  overlay?: Float32Array;
}

/** The settings recorded with an image, in the vocabulary of AUTOMATIC1111's infotext. */
export interface ImageMetadata {
  prompt: string;
  negativePrompt: string;
  steps: number;
  /** A1111 display names, e.g. "DPM++ 2M" and "Karras". */
  sampler: string;
  scheduleType: string;
  cfgScale: number;
  cfgRescale: number;
  seed: number;
  width: number;
  height: number;
  model: string;
  modelHash: string;
  /** Set when a VAE other than the model's decoded the image (A1111's "VAE" and "VAE hash"). */
  vae?: string;
  vaeHash?: string;
  rng: RngKind;
  seedMode: SeedMode;
  eta?: number;
  batchSize: number;
  batchPos: number;
  variationSeed?: number;
  variationStrength?: number;
  /** A1111's "ENSD", when set. */
  ensd?: number;
  /** img2img/inpaint: A1111's "Denoising strength". */
  denoisingStrength?: number;
}

export interface Timings {
  /** Milliseconds spent in each stage for the whole batch. */
  textEncoder: number;
  denoise: number;
  vaeDecode: number;
  total: number;
}

export interface GeneratedImage {
  image: Raster;
  seed: number;
  metadata: ImageMetadata;
}

export interface GenerationResult {
  images: GeneratedImage[];
  /** Final latents [batch, C, h, w] as handed to the VAE decoder (before the scaling factor). */
  latents: Float32Array;
  timings: Timings;
}

export type PipelineEvent =
  | { kind: 'stage'; stage: 'encode' | 'denoise' | 'decode' }
  | { kind: 'step'; step: number; total: number };

export type PipelineListener = (event: PipelineEvent) => void;
