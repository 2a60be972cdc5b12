import type { Raster } from '../image/raster.js';
import type { RngKind } from '../rng/types.js';

/**
 * How the images of one batch get their noise. 'a1111': image i uses seed + i with its own
 * generator (AUTOMATIC1111, ComfyUI's batch index convention aside). 'diffusers': one generator
 * seeded once draws the whole batch tensor, as a diffusers pipeline given one torch.Generator.
 */
export type SeedMode = 'a1111' | 'diffusers';

/** One call of the pipeline: every setting of every image it makes. */
export interface GenerationRequest {
  prompt: string;
  negativePrompt: string;
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
  /** Ancestral/DDIM eta; the sampler's own default when undefined. */
  eta?: number;
  /** A1111's and ComfyUI's DPM2 drop the next-to-last sigma; set by resolveSampler. */
  discardPenultimateSigma?: boolean;
  width: number;
  height: number;
  batchSize: number;
  /**
   * Start from these latents instead of drawing noise, [batch, C, h, w] flattened
   * (diffusers' `latents=` argument: still multiplied by the initial noise sigma).
   */
  initialNoise?: Float32Array;
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
  rng: RngKind;
  seedMode: SeedMode;
  eta?: number;
  batchSize: number;
  batchPos: number;
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
