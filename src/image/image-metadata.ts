/**
 * What one generated image records about how it was made, typed, in diffuse's own vocabulary.
 * The pipeline fills it; src/image/infotext.ts alone turns it into AUTOMATIC1111's labels and
 * back. Values that are names (sampler, schedule type) are already A1111's display names.
 */
export interface ImageMetadata {
  prompt: string;
  negativePrompt: string;
  steps: number;
  /** A1111 display names, e.g. "DPM++ 2M" and "Karras". */
  sampler: string;
  scheduleType: string;
  cfgScale: number;
  /** Guidance rescale; 0 is off. */
  cfgRescale: number;
  seed: number;
  width: number;
  height: number;
  /** Display name: the folder's name (A1111's "Model"). */
  model: string;
  modelHash: string;
  /** A VAE other than the model's (A1111's "VAE" and "VAE hash"). */
  vae?: { name: string; hash: string };
  /** TAESD decoded (and, for img2img, encoded): A1111's "VAE Decoder: TAESD", "VAE Encoder: TAESD". */
  tinyVae?: { decode: boolean; encode: boolean };
  rng: 'cpu' | 'philox';
  seedMode: 'a1111' | 'diffusers';
  eta?: number;
  batchSize: number;
  batchPos: number;
  /** A1111's variation seed of this image and its strength. */
  variationSeed?: number;
  variationStrength?: number;
  /** A1111's eta noise seed delta, when set. */
  ensd?: number;
  /** DeepCache's interval (--deep-cache), when above 1. */
  deepCache?: number;
  /** ToMe's ratio (--token-merging), when above 0: A1111's "Token merging ratio". */
  tokenMerging?: number;
  /** A1111 numbering: 1 is the last layer. */
  clipSkip: number;
  /** Textual-inversion embeddings the prompts used: name → short hash (A1111's "TI hashes"). */
  embeddings: Record<string, string>;
  /** LoRAs merged into the weights: the name the prompt used → A1111's 12-digit hash ("Lora hashes"). */
  loras?: Record<string, string>;
  promptWeighting: 'a1111' | 'comfy' | 'none';
  quantization?: { mode: string; format: string };
  /** The execution provider the UNet ran on when it was not the CPU (`--device`, or what `auto` chose). */
  provider?: string;
  /** The model's sigma table, when it is not the one the recorded sampler and schedule names imply. */
  sigmaTable?: 'diffusers' | 'a1111' | 'comfyui';
  /** Where SDE samplers' noise came from, for the samplers that draw it. */
  sdeNoise: 'brownian' | 'plain';
  /** img2img, inpaint, outpaint, depth2img. */
  init?: InitRecord;
  mask?: MaskRecord;
  outpaint?: OutpaintRecord;
  /** The safety checker ran: whether it flagged the image, and what replaced a flagged one. */
  safetyCheck?: { nsfw: boolean; action: 'black' | 'blur' };
  /** The invisible watermark embedded: 'sdxl' (the SDXL message) or text=… */
  watermark?: string;
  /** The model that took the sampling over (A1111's "Refiner" and "Refiner switch at"). */
  refiner?: { name: string; hash: string; switchAt: number };
  /** img2img's SD upscale script (A1111's "SD upscale overlap", "SD upscale upscaler"); width and height are the tile's. */
  sdUpscale?: { overlap: number; upscaler: string };
  /** depth2img: the depth map given (its hash), or estimated by the model's depth estimator. */
  depthMap?: 'estimated' | { hash: string };
  /** ControlNet units, in order (A1111's "ControlNet 0", "ControlNet 1", …). */
  control?: ControlRecord[];
  /** txt2img started from given latents (a DDIM inversion's) instead of the seed's noise: their file's short hash. */
  initialLatents?: { hash: string };
  /** txt2img's hires fix (A1111's "Hires upscale"/"Hires resize", "Hires upscaler", …); width and height are the first pass's. */
  hires?: HiresRecord;
}

export interface HiresRecord {
  scale?: number;
  resize?: { width: number; height: number };
  /** A1111's upscaler name ("Latent", "Latent (nearest-exact)", "Lanczos", …). */
  upscaler: string;
  /** Absent: as many as the first pass. */
  steps?: number;
  /** A1111's "Denoising strength". */
  strength: number;
  /** Each only where it differs from the first pass's. */
  prompt?: string;
  negativePrompt?: string;
  sampler?: string;
  scheduleType?: string;
  cfgScale?: number;
}

export interface ControlRecord {
  /** The preprocessor ("canny", "none", …) and its slider values. */
  module: string;
  /** Preprocessor Resolution, when res= was given (with Pixel Perfect: the slider's default the extension writes). */
  processorRes?: number;
  /** res=pixel-perfect: the resolution used was computed from the picture and the painted size. */
  pixelPerfect?: boolean;
  thresholdA?: number;
  thresholdB?: number;
  model: string;
  /** First 8 hex digits of the SHA-256 of its weights, as A1111 shows a ControlNet model. */
  hash: string;
  weight: number;
  resizeMode: 'just-resize' | 'crop-and-resize' | 'resize-and-fill';
  start: number;
  end: number;
  guess: boolean;
}

export interface InitRecord {
  /** A1111's "Denoising strength". */
  strength: number;
  strengthMode: 'diffusers' | 'a1111';
  /** Short sha256 of the picture's file, when it came from one. */
  hash?: string;
  resizeMode?: 'just-resize' | 'crop-and-resize' | 'resize-and-fill';
}

export interface MaskRecord {
  /** Short sha256 of the mask's file; absent when it came from the picture's alpha. */
  hash?: string;
  fromAlpha: boolean;
  blur: number;
  invert: boolean;
  content: 'original' | 'fill' | 'latent-noise' | 'latent-nothing';
  area: 'whole' | 'masked';
  /** area 'masked': context kept around the mask. */
  padding?: number;
}

export interface OutpaintRecord {
  extend: { left: number; right: number; top: number; bottom: number };
  fill: 'stretch' | 'blur' | 'noise';
  overlap: number;
  blur: number;
}
