/**
 * The hyper-parameters a graph is built from: the subset of diffusers' and transformers' configs
 * Stable Diffusion 1.x/2.x varies, read off a checkpoint's tensors (detect.ts) or a diffusers
 * folder's config.json files. Everything else is fixed by the architecture and written in the
 * builders.
 */

export type Activation = 'quick_gelu' | 'gelu';

/** transformers' CLIPTextModel: SD 1.x's CLIP ViT-L/14 text tower, or SD 2.x's OpenCLIP ViT-H/14 one. */
export interface TextEncoderConfig {
  vocabSize: number;
  hidden: number;
  /** Layers the graph runs: SD 2.x stops one short of OpenCLIP's last ("penultimate"). */
  layers: number;
  heads: number;
  intermediate: number;
  positions: number;
  activation: Activation;
  layerNormEps: number;
}

export type DownBlock = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlock = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/** diffusers' UNet2DConditionModel as SD 1.x/2.x use it (no class or addition embeddings). */
export interface UnetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  downBlockTypes: DownBlock[];
  upBlockTypes: UpBlock[];
  crossAttentionDim: number;
  /** Attention heads per down level (up levels mirror them; the mid block uses the last). */
  heads: number[];
  useLinearProjection: boolean;
  transformerLayersPerBlock: number;
  normGroups: number;
  normEps: number;
  flipSinToCos: boolean;
  freqShift: number;
  /** Native latent size (64 for 512 px). */
  sampleSize: number;
}

/** diffusers' AutoencoderKL. */
export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  latentChannels: number;
  normGroups: number;
  scalingFactor: number;
  /** Native image size in pixels. */
  sampleSize: number;
}

export type Family = 'sd1' | 'sd2';
export type Variant = 'base' | 'inpaint' | 'depth';
export type Prediction = 'epsilon' | 'v_prediction';

export interface ModelConfig {
  family: Family;
  variant: Variant;
  prediction: Prediction;
  textEncoder: TextEncoderConfig;
  unet: UnetConfig;
  vae: VaeConfig;
}

/** Norm layers inside the UNet's transformers (diffusers' Transformer2DModel) and the whole VAE use this epsilon. */
export const INNER_NORM_EPS = 1e-6;
