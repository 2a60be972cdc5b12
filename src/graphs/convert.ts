import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { buildClipText } from './clip-text.js';
import { openModelSource } from './model-source.js';
import type { ModelSource } from './source.js';
import { DiffuseError, UsageError, describeCause } from '../errors.js';
import { CheckpointError, ConversionError } from './errors.js';
import type { ModelConfig, Prediction } from './model-config.js';
import { CONVERTER_VERSION, writeModelFolder, type CheckpointRecord } from './model-folder.js';
import type { GraphBuilder, WeightType } from './onnx-builder.js';
import { probePrediction } from './prediction-probe.js';
import { buildUnet } from './unet.js';
import { buildVaeDecoder, buildVaeEncoder } from './vae.js';
import { ComponentWeights } from './weights.js';
import { recordSource } from '../onnx/derived-source.js';

/**
 * A single-file checkpoint (or a diffusers PyTorch folder) to a diffusers ONNX folder the pipeline
 * loads like any other: the model is read off the file (detect.ts), every graph is built and
 * checked against the weights before a byte is written, the weights stream through one tensor at
 * a time, and the folder is assembled beside its destination and renamed into place, so a
 * failure leaves nothing behind.
 */

export type Precision = 'fp32' | 'fp16';

export interface ConvertOptions {
  precision: Precision;
  /** SD 2.x's ε or v; by default SD 1.x, inpainting and depth models are ε and SD 2.x is probed. */
  prediction?: Prediction;
  /** The checkpoint's hashes, recorded for the metadata (A1111's Model hash). */
  hashes?: { sha256: string; a1111Hash: string; a1111OldHash: string };
  onProgress?: (event: ConvertProgress) => void;
}

export interface ConvertProgress {
  stage: 'write' | 'probe';
  /** Bytes of weights written so far, of `total`. */
  done: number;
  total: number;
}

export interface ConvertedModel {
  dir: string;
  config: ModelConfig;
  record: CheckpointRecord;
}

type Component = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae_encoder' | 'vae_decoder';
const DATA_FILE = 'model.onnx_data';

/** Single files do not say their native size: SDXL is trained at 1024 px, SD 2.x v-models at 768 (96 latents), the others at 512. */
function withNativeSize(config: Omit<ModelConfig, 'prediction'>, prediction: Prediction): ModelConfig {
  const latents = config.family === 'sdxl' ? 128 : config.family === 'sd2' && config.variant === 'base' && prediction === 'v_prediction' ? 96 : 64;
  const pixels = latents * 2 ** (config.vae.blockOutChannels.length - 1);
  return { ...config, prediction, unet: { ...config.unet, sampleSize: latents }, vae: { ...config.vae, sampleSize: pixels } };
}

type Built = Partial<Record<Component, { graph: GraphBuilder; weights: ComponentWeights }>>;

function buildGraphs(source: ModelSource, weightType: WeightType): Built {
  const { config } = source;
  const unet = new ComponentWeights('UNet', source.unet.store, source.unet.locate);
  const encoder = new ComponentWeights('VAE encoder', source.vae.store, source.vae.locate);
  const decoder = new ComponentWeights('VAE decoder', source.vae.store, source.vae.locate);
  const text = (label: string, from: ModelSource['textEncoder'], textConfig: ModelConfig['textEncoder'], name: Component): Built => {
    if (!from || !textConfig) return {};
    const weights = new ComponentWeights(label, from.store, from.locate);
    return { [name]: { graph: buildClipText(weights, textConfig, weightType, name), weights } };
  };
  return {
    ...text('text encoder', source.textEncoder, config.textEncoder, 'text_encoder'),
    ...text('second text encoder', source.textEncoder2, config.textEncoder2, 'text_encoder_2'),
    unet: { graph: buildUnet(unet, config.unet, weightType), weights: unet },
    vae_encoder: { graph: buildVaeEncoder(encoder, config.vae, weightType), weights: encoder },
    vae_decoder: { graph: buildVaeDecoder(decoder, config.vae, weightType), weights: decoder },
  };
}

export async function convertCheckpoint(source: string, outDir: string, options: ConvertOptions): Promise<ConvertedModel> {
  if (existsSync(outDir)) throw new UsageError(`${outDir} already exists; converting writes a new folder (remove it or choose another)`);
  const model = await openModelSource(source);
  const tmp = `${outDir}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const weightType: WeightType = options.precision === 'fp16' ? 'float16' : 'float32';
    let graphs;
    try {
      graphs = buildGraphs(model, weightType);
    } catch (err) {
      if (err instanceof RangeError) throw new CheckpointError(`${source}: ${err.message}`, { cause: err });
      throw err;
    }
    const built = Object.entries(graphs) as Array<[Component, NonNullable<Built[Component]>]>;
    const total = built.reduce((n, [, c]) => n + c.graph.weights.reduce((m, w) => m + w.dims.reduce((a, b) => a * b, 1), 0), 0) * (weightType === 'float32' ? 4 : 2);
    let done = 0;
    const onWeight = (bytes: number): void => {
      done += bytes;
      options.onProgress?.({ stage: 'write', done, total });
    };
    // Without A1111's hash of a file, the metadata's Model hash is the UNet's weightsHash: taken from the bytes as they are written.
    const unetHash = options.hashes ? undefined : createHash('sha256');
    try {
      await mkdir(tmp, { recursive: true });
      for (const [component, { graph }] of built) {
        await graph.write(join(tmp, component), DATA_FILE, { onWeight, ...(component === 'unet' && unetHash ? { hash: unetHash } : {}) });
      }
    } catch (err) {
      if (err instanceof DiffuseError) throw err;
      throw new ConversionError(`cannot write the converted model beside ${outDir}: ${describeCause(err)} (free some disk space or choose another folder)`, { cause: err });
    }
    const decided = await decidePrediction(model, options, join(tmp, 'unet', 'model.onnx'));
    const config = model.statesSize ? { ...model.config, prediction: decided.prediction } : withNativeSize(model.config, decided.prediction);
    const record: CheckpointRecord = {
      name: basename(source, extname(source)),
      file: basename(source),
      ...(options.hashes ?? {}),
      ...(unetHash ? { unetSha256: unetHash.digest('hex') } : {}),
      family: config.family,
      variant: config.variant,
      prediction: config.prediction,
      predictionFrom: decided.from,
      precision: options.precision,
      converter: CONVERTER_VERSION,
    };
    const weightMap = Object.fromEntries(built.map(([c, { weights }]) => [c, weights.records]));
    await writeModelFolder(tmp, config, record, weightMap, model);
    // What `models prune` and `models rm` look for: the folder goes when its checkpoint does.
    recordSource(tmp, source);
    await rename(tmp, outDir);
    return { dir: outDir, config, record };
  } finally {
    await model.close();
    await rm(tmp, { recursive: true, force: true });
  }
}

async function decidePrediction(model: ModelSource, options: ConvertOptions, unetPath: string): Promise<{ prediction: Prediction; from: CheckpointRecord['predictionFrom'] }> {
  const { config } = model;
  if (options.prediction) return { prediction: options.prediction, from: 'option' };
  if (model.prediction) return { prediction: model.prediction, from: 'config' };
  if (config.family !== 'sd2' || config.variant !== 'base') return { prediction: 'epsilon', from: 'family' };
  options.onProgress?.({ stage: 'probe', done: 0, total: 1 });
  const probe = await probePrediction(unetPath, { in: config.unet.inChannels, context: config.unet.crossAttentionDim });
  return { prediction: probe.prediction, from: 'probe' };
}
