import { basename } from 'node:path';
import type { Device, OpenedSession } from '../onnx/session.js';
import { readCheckpointRecord } from '../graphs/model-folder.js';
import type { DiscreteSchedule } from '../schedulers/types.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import type { EmbeddingTokens } from '../text/embeddings.js';
import type { DepthEstimator } from './depth-estimator.js';
import type { ModelFiles } from './model-files.js';
import type { QuantizationChoice } from './quantize.js';
import { TextEncoder } from './text-encoder.js';
import { Unet } from './unet.js';
import { VaeDecoder, VaeEncoder } from './vae.js';

/** Everything one model needs to generate, loaded once and reused across images. */
export interface ModelBundle {
  files: ModelFiles;
  /** Display name (A1111's "Model:" field): the checkpoint's file name for converted models, else the folder's name. */
  name: string;
  tokenizer: ClipTokenizer;
  textEncoder: TextEncoder;
  /** Embeddings added to the text encoder: the token ids of their trigger word and of their vectors. */
  embeddings: EmbeddingTokens[];
  /** Names and hashes of those embeddings, for the metadata (A1111's "TI hashes"). */
  embeddingHashes: Record<string, string>;
  unet: Unet;
  vaeDecoder: VaeDecoder;
  vaeEncoder?: VaeEncoder;
  /** The VAE given instead of the model's: its folder name and decoder graph (A1111's "VAE" fields). */
  vae?: { name: string; decoderPath: string };
  depthEstimator?: DepthEstimator;
  schedule: DiscreteSchedule;
  /** The provider the UNet runs on (auto resolved). */
  provider: Exclude<Device, 'auto'>;
  /** The text encoder layer the conditioning comes from (A1111 numbering: 1 = the last). */
  clipSkip: number;
  /** What --quantize made of the graphs, when it ran. */
  quantization?: QuantizationChoice;
  release(): Promise<void>;
}

/** What a bundle holds besides its sessions. */
export interface BundleParts {
  files: ModelFiles;
  tokenizer: ClipTokenizer;
  schedule: DiscreteSchedule;
  hiddenOutput: string;
  clipSkip: number;
  embeddings: EmbeddingTokens[];
  embeddingHashes: Record<string, string>;
}

export function assemble(
  parts: BundleParts,
  sessions: { text: OpenedSession; unet: OpenedSession; decoder: OpenedSession; encoder: OpenedSession | undefined },
  reopenText?: () => Promise<OpenedSession>,
): ModelBundle {
  const { text, unet, decoder, encoder } = sessions;
  const textEncoder = new TextEncoder(text, { hiddenOutput: parts.hiddenOutput, ...(reopenText ? { reopen: reopenText } : {}) });
  const opened = [unet, decoder, encoder].filter((s) => s !== undefined);
  return {
    files: parts.files,
    name: readCheckpointRecord(parts.files.dir)?.name ?? basename(parts.files.dir),
    tokenizer: parts.tokenizer,
    clipSkip: parts.clipSkip,
    textEncoder,
    embeddings: parts.embeddings,
    embeddingHashes: parts.embeddingHashes,
    unet: new Unet(unet),
    vaeDecoder: new VaeDecoder(decoder),
    ...(encoder ? { vaeEncoder: new VaeEncoder(encoder) } : {}),
    schedule: parts.schedule,
    provider: unet.provider,
    release: async () => {
      await Promise.all([textEncoder.release(), ...opened.map((s) => s.session.release())]);
    },
  };
}

