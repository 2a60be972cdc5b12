import type { Locator } from './ldm-keys.js';
import type { ModelConfig, Prediction } from './model-config.js';
import type { TensorStore } from './weights.js';

/**
 * Where a model's weights come from, whatever the layout: a single-file checkpoint (one store,
 * LDM key names) or a diffusers folder (one store per component, diffusers' own names).
 */

export interface ComponentSource {
  store: TensorStore;
  locate: Locator;
}

export interface ModelSource {
  config: Omit<ModelConfig, 'prediction'>;
  /** Absent in the SDXL refiner (config.textEncoder says so too). */
  textEncoder?: ComponentSource;
  /** SDXL's second text encoder (OpenCLIP bigG). */
  textEncoder2?: ComponentSource;
  unet: ComponentSource;
  vae: ComponentSource;
  /** The prediction type the source states (a diffusers folder's scheduler config); single files state none. */
  prediction?: Prediction;
  /** Whether the configs give the native image size (a diffusers folder's do, a single file cannot). */
  statesSize: boolean;
  /** Tokenizer folders to carry over as they are (a diffusers folder's tokenizer/ and tokenizer_2/). */
  tokenizerDir?: string;
  tokenizer2Dir?: string;
  /** What the source's model_index.json says about empty prompts (diffusers' SDXL pipelines read it); single files say nothing. */
  forceZerosForEmptyPrompt?: boolean;
  close(): Promise<void>;
}
