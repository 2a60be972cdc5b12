import { basename } from 'node:path';
import type { Upscaler } from './upscale/model.js';
import type { Device, OpenedSession } from '../onnx/session.js';
import { readCheckpointRecord } from '../graphs/model-folder.js';
import type { DiscreteSchedule } from '../schedulers/types.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import type { EmbeddingTokens } from '../text/embeddings.js';
import type { LoadedControlNet } from './controlnet.js';
import type { DepthEstimator } from './depth-estimator.js';
import type { ModelFiles } from './model-files.js';
import type { QuantizationChoice } from './quantize.js';
import type { SafetyChecker } from './safety-checker.js';
import { TextEncoder, type HiddenOutput } from './text-encoder.js';
import { Unet } from './unet.js';
import { VaeDecoder, VaeEncoder } from './vae.js';

/** One text encoder and its tokenizer. */
export interface TextEncoderSlot {
  tokenizer: ClipTokenizer;
  textEncoder: TextEncoder;
  /** Embeddings in this encoder's token table (SDXL: clip_l's in the first, clip_g's in the second). */
  embeddings: EmbeddingTokens[];
}

/**
 * SDXL's conditioning: the penultimate hidden states of its text encoders concatenated per token
 * (CLIP ViT-L's then OpenCLIP ViT-bigG's; a refiner has the second alone), the last encoder's
 * pooled projection as `text_embeds`, and the micro-conditioning `time_ids` the UNet declares.
 */
export interface SdxlParts {
  encoders: TextEncoderSlot[];
  /** model_index.json's force_zeros_for_empty_prompt: an empty negative prompt conditions on zeros (SDXL base). */
  forceZerosForEmptyPrompt: boolean;
}

/** Everything one model needs to generate, loaded once and reused across images. */
export interface ModelBundle {
  files: ModelFiles;
  /** Display name (A1111's "Model:" field): the checkpoint's file name for converted models, else the folder's name. */
  name: string;
  /** The (first) text encoder and its tokenizer: SD 1.x/2.x's only one, SDXL's first (sdxl.encoders[0]). */
  tokenizer: ClipTokenizer;
  textEncoder: TextEncoder;
  /** SDXL models: all their text encoders and how the UNet's added conditioning is made. */
  sdxl?: SdxlParts;
  /** The SDXL refiner loaded beside this model (LoadOptions.refiner), used when a request sets refinerSwitch. */
  refiner?: ModelBundle;
  /** Embeddings added to the text encoder: the token ids of their trigger word and of their vectors. */
  embeddings: EmbeddingTokens[];
  /** Names and hashes of those embeddings, for the metadata (A1111's "TI hashes"). */
  embeddingHashes: Record<string, string>;
  unet: Unet;
  /** LoRAs merged into the weights at load: the name the prompt used and A1111's short hash ("Lora hashes"). */
  loras: Array<{ name: string; hash: string }>;
  vaeDecoder: VaeDecoder;
  vaeEncoder?: VaeEncoder;
  /** The VAE given instead of the model's (A1111's "VAE" fields, or its "VAE Decoder: TAESD"). */
  vae?: VaeChoice;
  /**
   * Latents are divided by this before decoding and multiplied by it after encoding: the model's
   * scaling factor, or TAESD's 1 (its latent space is the UNet's own).
   */
  vaeScale: number;
  /** TAESD's decoder for live previews (src/pipeline/preview.ts), when one was loaded. */
  previewDecoder?: VaeDecoder;
  depthEstimator?: DepthEstimator;
  /** The folder's safety checker, opened when LoadOptions.withSafetyChecker asks for it. */
  safetyChecker?: SafetyChecker;
  /** An image upscaler opened beside the model (LoadOptions.upscaler) for SD upscale requests. */
  upscaler?: Upscaler;
  /** ControlNets loaded beside the UNet (LoadOptions.controlnets), which a request's control units name. */
  controlNets?: LoadedControlNet[];
  schedule: DiscreteSchedule;
  /** The provider the UNet runs on (auto resolved). */
  provider: Exclude<Device, 'auto'>;
  /** The text encoder layer the conditioning comes from (A1111 numbering: 1 = the last). */
  clipSkip: number;
  /** What --quantize made of the graphs, when it ran. */
  quantization?: QuantizationChoice;
  /** The token merging ratio the UNet was edited for (LoadOptions.tokenMerging), when above 0. */
  tokenMerging?: number;
  release(): Promise<void>;
}

/** A text encoder graph to open and what to read from it. */
export interface TextEncoderPart {
  path: string;
  tokenizer: ClipTokenizer;
  hiddenOutput: HiddenOutput;
  pooledOutput?: string;
  /** SDXL: the embeddings this encoder's graph holds (SD 1.x/2.x keep theirs in BundleParts.embeddings). */
  embeddings?: EmbeddingTokens[];
}

/** Another VAE than the model's, as the metadata records it. */
export interface VaeChoice {
  /** A1111's "VAE": a VAE file's name, or the folder's name. */
  name: string;
  /** A1111's "VAE hash" when known (a file's SHA-256); else the decoder graph's is computed when needed. */
  hash?: string;
  decoderPath: string;
  /** TAESD: recorded as A1111's "VAE Decoder: TAESD" (and "VAE Encoder" when it encodes) instead. */
  tiny: boolean;
}

/** What a bundle holds besides its sessions. */
export interface BundleParts {
  files: ModelFiles;
  /** One text encoder (SD 1.x/2.x), or SDXL's in concatenation order. */
  texts: TextEncoderPart[];
  sdxl?: Omit<SdxlParts, 'encoders'>;
  schedule: DiscreteSchedule;
  clipSkip: number;
  embeddings: EmbeddingTokens[];
  embeddingHashes: Record<string, string>;
  loras: Array<{ name: string; hash: string }>;
}

/** Sessions in the order of parts.texts; reopenText (parked encoders) reopens the i-th. */
export function assemble(
  parts: BundleParts,
  sessions: { texts: OpenedSession[]; unet: OpenedSession; decoder: OpenedSession; encoder: OpenedSession | undefined; shallowUnet?: OpenedSession | undefined },
  reopenText?: (i: number) => Promise<OpenedSession>,
): ModelBundle {
  const { texts, unet, decoder, encoder } = sessions;
  const slots: TextEncoderSlot[] = parts.texts.map((part, i) => ({
    tokenizer: part.tokenizer,
    embeddings: part.embeddings ?? parts.embeddings,
    textEncoder: new TextEncoder(texts[i]!, {
      hiddenOutput: part.hiddenOutput,
      ...(part.pooledOutput ? { pooledOutput: part.pooledOutput } : {}),
      ...(reopenText ? { reopen: () => reopenText(i) } : {}),
    }),
  }));
  const opened = [unet, decoder, encoder].filter((s) => s !== undefined);
  const denoiser = new Unet(unet, parts.files.layersPerBlock, sessions.shallowUnet);
  return {
    files: parts.files,
    name: readCheckpointRecord(parts.files.dir)?.name ?? basename(parts.files.dir),
    tokenizer: slots[0]!.tokenizer,
    clipSkip: parts.clipSkip,
    textEncoder: slots[0]!.textEncoder,
    ...(parts.sdxl ? { sdxl: { ...parts.sdxl, encoders: slots } } : {}),
    embeddings: parts.embeddings,
    embeddingHashes: parts.embeddingHashes,
    unet: denoiser,
    loras: parts.loras,
    vaeDecoder: new VaeDecoder(decoder, parts.files.latentChannels),
    ...(encoder ? { vaeEncoder: new VaeEncoder(encoder) } : {}),
    schedule: parts.schedule,
    vaeScale: parts.files.vaeScalingFactor,
    provider: unet.provider,
    release: async () => {
      // Device copies of the UNet's inputs before the sessions they were made for.
      await denoiser.release();
      await Promise.all([...slots.map((s) => s.textEncoder.release()), ...opened.map((s) => s.session.release())]);
    },
  };
}

/** Frees every text encoder until a new prompt needs it (see TextEncoder.park). */
export async function parkTextEncoders(bundle: ModelBundle): Promise<void> {
  await Promise.all((bundle.sdxl?.encoders ?? [bundle]).map((slot) => slot.textEncoder.park()));
}
