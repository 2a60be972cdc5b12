import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { recordSource } from '../onnx/derived-source.js';
import { openWeightFile, type OpenedStore } from './checkpoint-store.js';
import { checkpointHashes, type EnsureProgress } from './converted-cache.js';
import { assembleFolder, cachedConversion, writeGraph } from './converted-folder.js';
import { CheckpointError } from './errors.js';
import type { GraphBuilder } from './onnx-builder.js';
import { buildTinyDecoder, buildTinyEncoder } from './taesd.js';
import { buildVaeDecoder, buildVaeEncoder } from './vae.js';
import { detectVae, type DetectedVae } from './vae-detect.js';
import { ComponentWeights } from './weights.js';

/**
 * `--vae <file>`: a VAE weight file (SD's VAE as A1111 users swap it, or TAESD) converted once into
 * the diffusers ONNX layout the pipeline loads (vae_decoder/, vae_encoder/ when the weights have
 * one), cached under `<cacheDir>/vae-<sha256 of the file>/` with vae.json recording what it is and
 * A1111's identity of it: "VAE" is the file's name, "VAE hash" the first 10 hex digits of its
 * SHA-256 (modules/sd_vae.py get_loaded_vae_hash). The folder is assembled beside its final name
 * and renamed into place, so a failure leaves nothing behind.
 */

export type VaeKind = 'kl' | 'taesd';

export interface VaeRecord {
  kind: VaeKind;
  /** A1111's "VAE": the weight file's name (TAESD's: its decoder file's). */
  name: string;
  sha256: string;
  /** A1111's "VAE hash". */
  a1111Hash: string;
  latentChannels: number;
  encoder: boolean;
  converter: number;
}

export const VAE_RECORD = 'vae.json';
/** Bumped when the builders change the graphs a VAE file converts to. */
const VAE_CONVERTER_VERSION = 1;
const WEIGHT_FILE = /\.(safetensors|ckpt|pt|pth|bin)$/i;

/**
 * The weight files a --vae path names: the file itself (with, for an original taesd_decoder file,
 * the taesd_encoder file beside it, as A1111 and ComfyUI pair them), or in a folder a diffusers
 * VAE's diffusion_pytorch_model file or a TAESD decoder file.
 */
export function vaeFiles(path: string): { main: string; encoder?: string } {
  if (statSync(path).isDirectory()) {
    const names = readdirSync(path).filter((n) => WEIGHT_FILE.test(n)).sort((a, b) => rank(a) - rank(b));
    const main = names.find((n) => n.startsWith('diffusion_pytorch_model.')) ?? names.find((n) => /decoder\./i.test(n));
    if (!main) throw new CheckpointError(`${path} holds no VAE weights (diffusion_pytorch_model.safetensors, or a taesd_decoder file); pass the VAE file itself`);
    return vaeFiles(join(path, main));
  }
  const name = basename(path);
  const at = name.toLowerCase().lastIndexOf('decoder');
  if (at < 0) return { main: path };
  const stem = `${name.slice(0, at)}encoder`;
  const encoder = [extname(name), '.safetensors', '.pth', '.pt'].map((ext) => join(dirname(path), stem + ext)).find((p) => existsSync(p));
  return encoder ? { main: path, encoder } : { main: path };
}

/** safetensors before torch files, as diffusers picks them. */
function rank(name: string): number {
  return name.endsWith('.safetensors') ? 0 : 1;
}

interface Built {
  decoder: { graph: GraphBuilder };
  encoder?: { graph: GraphBuilder };
  kind: VaeKind;
  latentChannels: number;
  /** Channels per resolution level, as diffusers' configs give them: 2^(levels - 1) pixels per latent. */
  blockOutChannels: number[];
}

function build(main: { store: OpenedStore; found: DetectedVae }, encoder?: { store: OpenedStore; found: DetectedVae }): Built {
  const { store, found } = main;
  if (found.kind === 'kl') {
    const config = { ...found.config, scalingFactor: 0.18215, sampleSize: 512 };
    const weights = (part: string) => new ComponentWeights(part, store, found.locate);
    return {
      kind: 'kl',
      latentChannels: config.latentChannels,
      blockOutChannels: config.blockOutChannels,
      decoder: { graph: buildVaeDecoder(weights('VAE decoder'), config, 'float32') },
      ...(found.hasEncoder ? { encoder: { graph: buildVaeEncoder(weights('VAE encoder'), config, 'float32') } } : {}),
    };
  }
  const decoder = found.sides.decoder;
  if (!decoder) throw new CheckpointError(`${store.label} is a TAESD encoder; pass its decoder file (taesd_decoder), the encoder beside it is found by name`);
  const tinyEncoder = found.sides.encoder ? { store, side: found.sides.encoder } : encoder?.found.kind === 'taesd' && encoder.found.sides.encoder ? { store: encoder.store, side: encoder.found.sides.encoder } : undefined;
  if (tinyEncoder && tinyEncoder.side.plan.latentChannels !== decoder.plan.latentChannels) {
    throw new CheckpointError(`${tinyEncoder.store.label} makes ${tinyEncoder.side.plan.latentChannels}-channel latents but its decoder reads ${decoder.plan.latentChannels}; they are not a pair`);
  }
  return {
    kind: 'taesd',
    latentChannels: decoder.plan.latentChannels,
    // One level more than the upsamplings, each before a convolution without bias.
    blockOutChannels: [decoder.plan.layers[0]!.out, ...decoder.plan.layers.filter((l) => l.kind === 'conv' && !l.bias).map((l) => l.out)],
    decoder: { graph: buildTinyDecoder(new ComponentWeights('TAESD decoder', store, decoder.locate), decoder.plan, 'float32') },
    ...(tinyEncoder ? { encoder: { graph: buildTinyEncoder(new ComponentWeights('TAESD encoder', tinyEncoder.store, tinyEncoder.side.locate), tinyEncoder.side.plan, 'float32') } } : {}),
  };
}

/** The diffusers config beside each graph: what src/pipeline reads of a VAE folder. */
function configJson(built: Built): Record<string, unknown> {
  return built.kind === 'taesd'
    ? { _class_name: 'AutoencoderTiny', latent_channels: built.latentChannels, scaling_factor: 1.0, block_out_channels: built.blockOutChannels }
    : { _class_name: 'AutoencoderKL', latent_channels: built.latentChannels, block_out_channels: built.blockOutChannels };
}

export async function convertVae(files: { main: string; encoder?: string }, outDir: string, hashes: { sha256: string; a1111Hash: string }): Promise<VaeRecord> {
  const stores: OpenedStore[] = [];
  try {
    const open = async (path: string) => {
      const store = await openWeightFile(path);
      stores.push(store);
      return { store, found: detectVae(store) };
    };
    const main = await open(files.main);
    const built = build(main, main.found.kind === 'taesd' && files.encoder ? await open(files.encoder) : undefined);
    const record: VaeRecord = { kind: built.kind, name: basename(files.main), ...hashes, latentChannels: built.latentChannels, encoder: Boolean(built.encoder), converter: VAE_CONVERTER_VERSION };
    await assembleFolder(outDir, async (tmp) => {
      for (const [part, graph] of [['vae_decoder', built.decoder.graph], ['vae_encoder', built.encoder?.graph]] as const) {
        if (!graph) continue;
        await writeGraph(graph, tmp, part, 'VAE');
        await writeFile(join(tmp, part, 'config.json'), `${JSON.stringify(configJson(built), null, 2)}\n`);
      }
      await writeFile(join(tmp, VAE_RECORD), `${JSON.stringify(record, null, 2)}\n`);
      recordSource(tmp, files.main);
    });
    return record;
  } catch (err) {
    if (err instanceof RangeError) throw new CheckpointError(`${files.main}: ${err.message}`, { cause: err });
    throw err;
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

/** vae.json of a converted VAE folder, or undefined for any other folder. */
export function readVaeRecord(dir: string): VaeRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(join(dir, VAE_RECORD), 'utf8')) as VaeRecord;
    return typeof record.name === 'string' && (record.kind === 'kl' || record.kind === 'taesd') ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The converted folder of a VAE path (file or folder of weights), converting it first when the cache has none. */
export async function ensureConvertedVae(path: string, cacheDir: string, onProgress?: (event: EnsureProgress) => void): Promise<string> {
  const files = vaeFiles(path);
  const main = await checkpointHashes(files.main, cacheDir, onProgress);
  const encoder = files.encoder ? await checkpointHashes(files.encoder, cacheDir, onProgress) : undefined;
  const dir = join(cacheDir, `vae-${main.sha256.slice(0, 16)}${encoder ? `-${encoder.sha256.slice(0, 8)}` : ''}`);
  return cachedConversion(dir, (d) => readVaeRecord(d)?.converter === VAE_CONVERTER_VERSION, (d) => convertVae(files, d, { sha256: main.sha256, a1111Hash: main.a1111Hash }));
}
