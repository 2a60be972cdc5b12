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
  textEncoder: ComponentSource;
  /** SDXL's second text encoder (OpenCLIP bigG). */
  textEncoder2?: ComponentSource;
  unet: ComponentSource;
  vae: ComponentSource;
  /** The prediction type the source states (a diffusers folder's scheduler config); single files state none. */
  prediction?: Prediction;
  /** Whether the configs give the native image size (a diffusers folder's do, a single file cannot). */
  statesSize: boolean;
  /** A tokenizer folder to carry over as it is (a diffusers folder's). */
  tokenizerDir?: string;
  close(): Promise<void>;
}
