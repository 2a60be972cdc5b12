import { basename, resolve } from 'node:path';
import { openSession, type Device, type SessionSettings } from '../onnx/session.js';
import { discreteSchedule } from '../schedulers/index.js';
import type { DiscreteSchedule } from '../schedulers/types.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { ModelLoadError } from '../errors.js';
import { componentPath, readModelFiles, requirePart, type ModelFiles } from './model-files.js';
import { TextEncoder } from './text-encoder.js';
import { Unet } from './unet.js';
import { VaeDecoder, VaeEncoder } from './vae.js';

export interface LoadOptions {
  device: Device;
  threads?: number;
  /** Load the VAE encoder too (img2img, inpaint, outpaint). */
  withEncoder?: boolean;
}

/** Everything one model needs to generate, loaded once and reused across images. */
export interface ModelBundle {
  files: ModelFiles;
  /** Display name: the folder's name (A1111's "Model:" field). */
  name: string;
  tokenizer: ClipTokenizer;
  textEncoder: TextEncoder;
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
  const settings: SessionSettings = { device: options.device, ...(options.threads ? { threads: options.threads } : {}) };
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
  const [text, unet, decoder, encoder] = await Promise.all([
    openSession(paths.text, settings),
    openSession(paths.unet, settings),
    openSession(paths.decoder, settings),
    paths.encoder ? openSession(paths.encoder, settings) : Promise.resolve(undefined),
  ]);
  const sessions = [text, unet, decoder, encoder].filter((s) => s !== undefined);
  return {
    files,
    name: basename(files.dir),
    tokenizer,
    textEncoder: new TextEncoder(text),
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
