import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { openSession, type Device, type SessionSettings } from '../onnx/session.js';
import { discreteSchedule } from '../schedulers/index.js';
import type { DiscreteSchedule } from '../schedulers/types.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { ModelLoadError } from '../errors.js';
import { componentPath, readModelFiles, requirePart, type ModelFiles } from './model-files.js';
import { prepareTextEncoderModel, TextEncoder } from './text-encoder.js';
import { readEmbeddingsDir, type EmbeddingTokens } from '../text/embeddings.js';
import { cacheRoot } from '../models/index.js';
import { cachedModelEdit } from '../onnx/edited-model-cache.js';
import { fuseAttention } from '../onnx/fuse-attention.js';
import { Unet } from './unet.js';
import { VaeDecoder, VaeEncoder } from './vae.js';

export interface LoadOptions {
  device: Device;
  threads?: number;
  /** Load the VAE encoder too (img2img, inpaint, outpaint). */
  withEncoder?: boolean;
  /** A1111 numbering: 1 (default) = the last layer's hidden states. */
  clipSkip?: number;
  /** Textual-inversion embeddings (.safetensors, .pt, .bin) triggered by their file names. */
  embeddingsDir?: string;
  /** Where edited graphs are cached (default: the model cache's graphs/ folder). */
  graphCache?: string;
  /** Where ONNX Runtime's optimised graphs are kept for fast loads (CPU); none when absent. */
  optimizedCache?: string;
  /** Run the UNet's attention as fused MultiHeadAttention (about half the peak memory at 512²). */
  fuseAttention?: boolean;
}

/** Everything one model needs to generate, loaded once and reused across images. */
export interface ModelBundle {
  files: ModelFiles;
  /** Display name: the folder's name (A1111's "Model:" field). */
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
  schedule: DiscreteSchedule;
  /** The provider the UNet runs on (auto resolved). */
  provider: Exclude<Device, 'auto'>;
  release(): Promise<void>;
}

export async function loadModel(dir: string, options: LoadOptions): Promise<ModelBundle> {
  const files = readModelFiles(resolve(dir));
  const settings: SessionSettings = {
    device: options.device,
    ...(options.threads ? { threads: options.threads } : {}),
    ...(options.optimizedCache ? { optimizedCache: options.optimizedCache } : {}),
  };
  const paths = {
    text: requirePart(files.dir, 'text_encoder'),
    unet: requirePart(files.dir, 'unet'),
    decoder: requirePart(files.dir, 'vae_decoder'),
    encoder: options.withEncoder ? requirePart(files.dir, 'vae_encoder') : undefined,
  };
  requirePart(files.dir, 'tokenizer', 'vocab.json');
  const tokenizer = await ClipTokenizer.fromDirectory(componentPath(files.dir, 'tokenizer', ''));
  let schedule: DiscreteSchedule;
  try {
    schedule = discreteSchedule(files.schedulerConfig);
  } catch (err) {
    throw new ModelLoadError(`scheduler/scheduler_config.json: ${(err as Error).message}`, { cause: err });
  }
  const graphCache = options.graphCache ?? join(cacheRoot(), 'graphs');
  const embeddings = options.embeddingsDir ? readEmbeddingsDir(options.embeddingsDir, textWidth(files.dir)) : [];
  const prepared = prepareTextEncoderModel(paths.text, { ...(options.clipSkip ? { clipSkip: options.clipSkip } : {}), embeddings }, graphCache);
  const unetPath = options.fuseAttention ? fusedUnet(paths.unet, graphCache) : paths.unet;
  const [text, unet, decoder, encoder] = await Promise.all([
    openSession(prepared.path, settings),
    openSession(unetPath, settings),
    openSession(paths.decoder, settings),
    paths.encoder ? openSession(paths.encoder, settings) : Promise.resolve(undefined),
  ]);
  const sessions = [text, unet, decoder, encoder].filter((s) => s !== undefined);
  return {
    files,
    name: basename(files.dir),
    tokenizer,
    textEncoder: new TextEncoder(text, { hiddenOutput: prepared.hiddenOutput }),
    embeddings: prepared.embeddings.map((e) => ({ triggerIds: tokenizer.encode(e.name), ids: e.ids })),
    embeddingHashes: Object.fromEntries(embeddings.map((e) => [e.name, e.sha256.slice(0, 12)])),
    unet: new Unet(unet),
    vaeDecoder: new VaeDecoder(decoder),
    ...(encoder ? { vaeEncoder: new VaeEncoder(encoder) } : {}),
    schedule,
    provider: unet.provider,
    release: async () => {
      await Promise.all(sessions.map((s) => s.session.release()));
    },
  };
}

/**
 * The UNet with its attention blocks fused, edited once and cached beside links to its weights.
 * Fusion only speeds things up, so a graph it cannot read is loaded as exported, and ONNX Runtime
 * says what is wrong with it.
 */
function fusedUnet(path: string, cacheDir: string): string {
  try {
    return fuseOnce(path, cacheDir);
  } catch {
    return path;
  }
}

function fuseOnce(path: string, cacheDir: string): string {
  return cachedModelEdit({
    source: path,
    cacheDir,
    label: 'unet-fused-attention',
    editKey: { fuseAttention: 1 },
    edit: (model) => {
      const fused = fuseAttention(model);
      return { model: fused.model, result: { fused: fused.fused, skipped: fused.skipped } };
    },
  }).path;
}

/** The text encoder's hidden width from its config.json (768 for SD 1.x), which embeddings must match. */
function textWidth(dir: string): number {
  try {
    const config = JSON.parse(readFileSync(join(dir, 'text_encoder', 'config.json'), 'utf8')) as { hidden_size?: number };
    if (typeof config.hidden_size === 'number') return config.hidden_size;
  } catch {
    // Hub exports without a config: SD 1.x's width.
  }
  return 768;
}
