/**
 * The hyper-parameters a graph is built from: the subset of diffusers' and transformers' configs
 * Stable Diffusion 1.x/2.x and SDXL vary, read off a checkpoint's tensors (detect.ts) or a diffusers
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
  /**
   * SDXL's encoders: every layer's states as outputs hidden_states.0 … hidden_states.L (optimum's
   * SDXL export; the pipeline reads the penultimate), and for the second the pooled state through
   * text_projection (no bias) as text_embeds, this wide.
   */
  sdxl?: { projection?: number };
}

export type DownBlock = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlock = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/** diffusers' UNet2DConditionModel as SD 1.x/2.x (no class or addition embeddings) and SDXL (addition_embed_type text_time) use it. */
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
  /** BasicTransformerBlocks per attention: one count for every level (SD 1.x/2.x), or per down level (SDXL; the mid block takes the last). */
  transformerLayersPerBlock: number | number[];
  /**
   * SDXL's added conditioning (addition_embed_type "text_time"): the pooled text (`textEmbeds` wide)
   * and `timeIds` micro-conditioning numbers, each embedded sinusoidally `timeEmbedDim` wide,
   * through add_embedding into the time embedding.
   */
  addition?: { textEmbeds: number; timeIds: number; timeEmbedDim: number };
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

export type Family = 'sd1' | 'sd2' | 'sdxl';
export type Variant = 'base' | 'inpaint' | 'depth';
export type Prediction = 'epsilon' | 'v_prediction';

export interface ModelConfig {
  family: Family;
  variant: Variant;
  prediction: Prediction;
  /** CLIP ViT-L (SD 1.x, SDXL base) or OpenCLIP ViT-H (SD 2.x); absent in the SDXL refiner, which reads bigG alone. */
  textEncoder?: TextEncoderConfig;
  /** SDXL: OpenCLIP bigG, whose states join CLIP ViT-L's and whose projection is the pooled text. */
  textEncoder2?: TextEncoderConfig;
  unet: UnetConfig;
  vae: VaeConfig;
}

/** The transformer depth of a down level (the mid block's: the last level's). */
export function depthAt(config: Pick<UnetConfig, 'transformerLayersPerBlock'>, level: number): number {
  const d = config.transformerLayersPerBlock;
  return typeof d === 'number' ? d : d[level]!;
}

/** Norm layers inside the UNet's transformers (diffusers' Transformer2DModel) and the whole VAE use this epsilon. */
export const INNER_NORM_EPS = 1e-6;
