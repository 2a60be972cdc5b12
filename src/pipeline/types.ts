import type { ImageMetadata } from '../image/image-metadata.js';
import type { Raster } from '../image/raster.js';
import type { ResizeMode } from '../image/resize-modes.js';
import type { RngKind } from '../rng/types.js';
import type { CondPadding } from '../text/prompt-pad.js';
import type { NoiseTable, SamplerId, ScheduleId } from '../schedulers/index.js';

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
  sampler: SamplerId;
  schedule: ScheduleId;
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
  /**
   * DeepCache's cache interval (LoadOptions.deepCache must have split the UNet): every n-th
   * denoiser call of a pass runs the whole UNet and keeps its deep feature, the calls between run
   * only the shallow layers on it. Absent or 1: every call runs the whole UNet.
   */
  deepCache?: number;
  /** Ancestral/DDIM eta; the sampler's own default when undefined. */
  eta?: number;
  /** A1111's and ComfyUI's DPM2 drop the next-to-last sigma; set by resolveSampler. */
  discardPenultimateSigma?: boolean;
  /** Whose training sigmas the run uses (A1111's, ComfyUI's or diffusers'); set by resolveSampler, default diffusers'. */
  noiseTable?: NoiseTable;
  width: number;
  height: number;
  batchSize: number;
  /** AUTOMATIC1111's variation: image i's noise is slerped towards the noise of seed + i. */
  variation?: { seed: number; strength: number };
  /** Decode in overlapping tiles (diffusers' tiled_decode): bounded memory at large sizes. */
  vaeTiling?: boolean;
  /** img2img, inpaint, outpaint, depth2img: the picture to start from. */
  init?: InitImage;
  /** inpaint: which pixels of the picture to repaint, and how. */
  mask?: InpaintMask;
  /** outpaint: grow the picture's canvas and paint the new area. */
  outpaint?: Outpaint;
  /** depth2img: the depth the picture follows (depth-conditioned UNets only); absent, the model's estimator reads the picture. */
  depth?: DepthMap;
  /**
   * An invisible watermark embedded in every finished image (invisible-watermark's dwtDct, as
   * Stability's SDXL scripts and diffusers mark theirs); images need at least 256×256 pixels.
   */
  watermark?: Watermark;
  /**
   * Run the model's safety checker (LoadOptions.withSafetyChecker) on every finished image, as
   * diffusers' SD pipelines do, and replace a flagged one: black (diffusers') or blurred.
   */
  safetyCheck?: SafetyAction;
  /**
   * SDXL refiner: the completed fraction of the schedule (A1111's "Switch at", 0…1) from which the
   * model's refiner (ModelBundle.refiner) continues the loop; absent, no refiner runs.
   */
  refinerSwitch?: number;
  /** SDXL's micro-conditioning (sizes and crop the UNet is told about, a refiner's aesthetic scores); defaults as diffusers'. */
  microConditioning?: MicroConditioning;
  /**
   * ControlNet units (several: multi-ControlNet, their residuals summed), each naming a ControlNet
   * loaded with the model (LoadOptions.controlnets).
   */
  control?: ControlUnit[];
  /**
   * txt2img's hires fix (A1111's "Hires. fix"): the first pass's latents upscaled and painted again
   * at the larger size as an img2img pass (src/pipeline/tasks/hires.ts).
   */
  hires?: HiresFix;
  /**
   * img2img's "SD upscale" (A1111's script): the picture upscaled, cut into tiles of width x height,
   * each tile painted as its own img2img pass and the tiles blended back (src/pipeline/tasks/sd-upscale.ts).
   */
  sdUpscale?: SdUpscale;
  /**
   * Start from these latents instead of drawing noise, [batch, C, h, w] flattened (diffusers'
   * `latents=` argument: still multiplied by the initial noise sigma), e.g. a DDIM inversion's;
   * `hash` (the short SHA-256 of the file they came from) is recorded.
   */
  initialLatents?: { values: Float32Array; hash?: string };
}

/** A1111's latent upscalers (shared.latent_upscale_modes) and the built-in image upscalers, by our names. */
export const HIRES_UPSCALERS = [
  'latent', 'latent-antialiased', 'latent-bicubic', 'latent-bicubic-antialiased', 'latent-nearest', 'latent-nearest-exact', 'lanczos', 'nearest', 'none',
] as const;
export type HiresUpscaler = (typeof HIRES_UPSCALERS)[number];

/** The second pass of a hires fix, as A1111's StableDiffusionProcessingTxt2Img takes it (hr_* fields). */
export interface HiresFix {
  /** The size: a factor of the first pass's ("Hires upscale"), or a size to fill and crop to ("Hires resize"). */
  target: { scale: number } | { width: number; height: number };
  /** A latent or built-in upscaler, or an ESRGAN-family graph (its path, as loaded with LoadOptions.upscaler, and the name recorded). */
  upscaler: HiresUpscaler | { model: string; name: string };
  /** The second pass's steps; absent: the first pass's (A1111's 0). */
  steps?: number;
  /** Denoising strength of the second pass, (0, 1]. */
  strength: number;
  /** Absent: the first pass's. */
  prompt?: string;
  negativePrompt?: string;
  sampling?: Pick<GenerationRequest, 'sampler' | 'schedule' | 'discardPenultimateSigma' | 'noiseTable'>;
  cfgScale?: number;
}

/**
 * One ControlNet and what it follows, as diffusers' StableDiffusionControlNetPipeline takes them
 * (controlnet_conditioning_scale, control_guidance_start/end, guess_mode) and A1111's ControlNet
 * unit records them.
 */
export interface ControlUnit {
  /** The ControlNet's folder, as given to load() in LoadOptions.controlnets. */
  model: string;
  /** The control picture (already preprocessed: edges, depth, …), RGB at any size. */
  image: Raster;
  /** Conditioning scale: the residuals are multiplied by it. */
  weight: number;
  /** The completed fraction of the loop's calls from which (start) and until which (end) it runs, 0…1. */
  start: number;
  end: number;
  /**
   * Guess mode (A1111's "ControlNet is more important"): under CFG only the prompt's half gets
   * residuals, scaled from 0.1 (first block) up to 1 (mid block) on a log scale.
   */
  guess?: boolean;
  /** How the picture is brought to the painted size (default 'just-resize', as diffusers' image processor). */
  resizeMode?: ResizeMode;
  /**
   * The picture is already an "only masked" inpaint's region at the painted size
   * (tasks/control-region.ts pictureInRegion, which the CLI applies before the preprocessor, as
   * sd-webui-controlnet does); absent, the pipeline cuts it to the region itself.
   */
  inRegion?: boolean;
  /** The preprocessor that made the picture, for the metadata (A1111's "Module", "Threshold A/B"; default 'none'). */
  preprocessor?: { module: string; processorRes?: number; pixelPerfect?: boolean; thresholdA?: number; thresholdB?: number };
}

/**
 * What SDXL's UNet is told about the picture (its `time_ids`). Sizes are [height, width] in pixels,
 * the crop [top, left]; each negative field falls back to its positive one.
 */
export interface MicroConditioning {
  /** Default: the size painted. */
  originalSize?: [number, number];
  /** Default [0, 0]. */
  cropTopLeft?: [number, number];
  /** Default: the size painted (base UNets only). */
  targetSize?: [number, number];
  negativeOriginalSize?: [number, number];
  negativeCropTopLeft?: [number, number];
  negativeTargetSize?: [number, number];
  /** Refiner UNets: the aesthetic score of the prompt (default 6) and of the negative prompt (default 2.5). */
  aestheticScore?: number;
  negativeAestheticScore?: number;
}

/** A1111's SD upscale script's settings ("Scale Factor", "Tile overlap", "Upscaler"). */
export interface SdUpscale {
  /** Size of the upscaled picture / the picture's (A1111 upscales to int(side × scale // 8 × 8)). */
  scale: number;
  /** Pixels neighbouring tiles share, blended with combine_grid's linear feather (A1111's default 64). */
  overlap: number;
  /** The bundle's upscaler (LoadOptions.upscaler), recorded by `name`; or A1111's built-in Lanczos, Nearest, or None (the picture as it is). */
  upscaler: { kind: 'model'; name: string } | { kind: 'lanczos' | 'nearest' | 'none' };
}

/**
 * The picture img2img, inpaint, outpaint and depth2img start from. Its size: exactly the request's
 * width and height, except for inpainting a masked area (the whole picture; width and height
 * size the painted crop) and outpainting (the picture to extend; width and height are the grown
 * canvas).
 */
export interface InitImage {
  /** RGB. */
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
  /** Where the picture came from, recorded in the metadata (A1111's "Init image hash", "Resize mode"). */
  source?: { hash: string; resizeMode?: ResizeMode };
}

export type MaskedContent = 'original' | 'fill' | 'latent-noise' | 'latent-nothing';

export interface InpaintMask {
  /** [height, width] of the picture: 1 repaints, 0 keeps (binarised at 0.5 for the model, as diffusers does). */
  values: Float32Array;
  /** Repaint where the mask is 0 instead (A1111's "Inpaint not masked"). */
  invert?: boolean;
  /** Feather radius in pixels (A1111's "Mask blur"): the mask is blurred before the model and the overlay see it. */
  blur?: number;
  /**
   * Blend the result into the picture through this [height, width] plane in [0, 1] (taken in 8 bits,
   * by A1111's overlay), so every pixel where it is 0 keeps its value exactly; 'mask': through the
   * (blurred) mask as A1111 1.10 does, doubled for the whole picture. Absent: the model's output as
   * it is (diffusers), or for area 'masked' through the (blurred) mask.
   */
  overlay?: Float32Array | 'mask';
  /** What the masked area starts from (A1111's "Masked content"): the picture (default), its surrounding colours, the seed's noise, or zeros. */
  content?: MaskedContent;
  /**
   * 'whole' (default): the whole picture at the request's size. 'masked': a crop around the mask
   * (grown by `padding`, default 32, to the request's aspect), painted at the request's size and
   * pasted back through the overlay (A1111's "Only masked").
   */
  area?: 'whole' | 'masked';
  padding?: number;
  /** Where the mask came from, recorded in the metadata: its file's short hash, or the picture's alpha. */
  source?: { hash: string } | 'alpha';
}

/** Outpainting: the picture grows by `extend` pixels per side, painted in passes of at most `passSize`. */
export interface Outpaint {
  /** Multiples of 8. */
  extend: { left: number; right: number; top: number; bottom: number };
  /** Pre-fill of the new area (default 'stretch'). */
  fill?: 'stretch' | 'blur' | 'noise';
  /** How far into the old picture the seam is repainted (default 16, a multiple of 8). */
  overlap?: number;
  /** Feather of the seam (default 8). */
  blur?: number;
  /** Largest extension per pass (default: half the model's native size). */
  passSize?: number;
}

/** What becomes of an image the safety checker flags. */
export type SafetyAction = 'black' | 'blur';

/** A watermark payload and what the metadata calls it ('sdxl' for the SDXL message, text=… for a text). */
export interface Watermark {
  bits: readonly (0 | 1)[];
  label: string;
}

/** A depth map at any size and in any units (larger = nearer, as DPT/MiDaS), [height, width] row-major. */
export interface DepthMap {
  values: Float32Array;
  width: number;
  height: number;
  /** Its file's short hash, recorded in the metadata. */
  hash?: string;
}

/**
 * One denoising pass, what src/pipeline/denoise.ts runs: a request whose task fields (mask
 * handling, inpaint area, outpaint passes) src/pipeline/tasks/ has resolved into a picture of the
 * pass's size and the mask the model sees.
 */
export interface PassRequest extends Omit<GenerationRequest, 'init' | 'mask' | 'outpaint' | 'watermark' | 'safetyCheck' | 'hires' | 'sdUpscale'> {
  init?: Omit<InitImage, 'source'> & { maskedContent?: 'latent-noise' | 'latent-nothing' };
  /** overlay: the 8-bit mask A1111's overlay keeps the init picture through (composite.ts applyOverlay). */
  mask?: { values: Float32Array; overlay?: Uint8Array };
  /**
   * A hires fix's second pass: start from these scaled latents [batch, C, h, w] noised to `strength`
   * with A1111's fixed-steps cut, the prompt schedules counted on from `firstPassSteps` denoiser calls.
   */
  latentInit?: { latents: Float32Array; strength: number; firstPassSteps: number };
  /** Stop at the final latents, decoding nothing (a hires fix's first pass). */
  latentsOnly?: boolean;
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
  /** Final latents [batch, C, h, w] as handed to the VAE decoder (before the scaling factor); empty for SD upscale, whose image is blended tiles. */
  latents: Float32Array;
  timings: Timings;
}

export type { ImageMetadata };

export type PipelineEvent =
  | { kind: 'stage'; stage: 'encode' | 'denoise' | 'decode' }
  /**
   * A finished step and the denoiser's current x0 estimate of the batch, [batch, ...latentDims]
   * in the UNet's latent space (what live previews decode); valid during the call only.
   */
  | { kind: 'step'; step: number; total: number; denoised: Float32Array; latentDims: readonly [number, number, number] }
  /** Outpainting: image `image` of `images` starts its pass `pass` of `passes`. */
  | { kind: 'pass'; image: number; images: number; pass: number; passes: number };

export type PipelineListener = (event: PipelineEvent) => void;
