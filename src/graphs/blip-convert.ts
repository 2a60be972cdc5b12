import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBlipDecoder, buildBlipVision, blipLocator, checkBlipStore, readBlipConfig } from './blip.js';
import { openWeightFile } from './checkpoint-store.js';
import { checkpointHashes, type EnsureProgress } from './converted-cache.js';
import type { WeightType } from './onnx-builder.js';
import { ComponentWeights } from './weights.js';

/** What the captioner reads beside its graphs, copied from the source folder when it has them. */
const CARRIED = ['config.json', 'preprocessor_config.json', 'vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json'];

/**
 * A Hub BLIP captioning folder (model.safetensors, config.json, the processor and tokenizer files) to the folder
 * img2txt's captioner loads: vision_model/model.onnx and text_decoder_model/model.onnx, each with its weights.pb,
 * and the carried files. Built under a temporary name and renamed, so `out` exists only when complete.
 */
export async function convertBlip(src: string, out: string, weightType: WeightType = 'float32'): Promise<void> {
  const config = readBlipConfig(src);
  const store = await openWeightFile(join(src, 'model.safetensors'));
  const temp = `${out}.${process.pid}.tmp`;
  try {
    checkBlipStore(store);
    const locate = blipLocator(config);
    const graphs = [
      ['vision_model', buildBlipVision(new ComponentWeights('BLIP vision model', store, locate), config, weightType)],
      ['text_decoder_model', buildBlipDecoder(new ComponentWeights('BLIP text decoder', store, locate), config, weightType)],
    ] as const;
    await rm(temp, { recursive: true, force: true });
    for (const [name, graph] of graphs) await graph.write(join(temp, name), 'weights.pb');
    for (const file of CARRIED) if (existsSync(join(src, file))) await copyFile(join(src, file), join(temp, file));
    await rename(temp, out);
  } finally {
    await store.close();
    await rm(temp, { recursive: true, force: true });
  }
}

/** Bumped when the graphs convertBlip writes change, so older conversions in the cache are made again. */
const BLIP_CONVERTER_VERSION = 1;

/** Whether `dir` is a Hub BLIP folder to convert (its weights are there, its graphs are not). */
export function isBlipSource(dir: string): boolean {
  return existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'vision_model', 'model.onnx')) && !existsSync(join(dir, 'onnx', 'vision_model.onnx'));
}

/**
 * The captioner folder of a Hub BLIP folder, converted into `cacheDir` the first time: named after model.safetensors'
 * SHA-256 (remembered per path, size and time, as checkpoints are) and the converter's version. convertBlip renames
 * a finished folder into place, so one that exists is complete.
 */
export async function ensureConvertedBlip(src: string, cacheDir: string, onProgress?: (event: EnsureProgress) => void): Promise<string> {
  readBlipConfig(src); // a folder that is not BLIP is refused before its weights are hashed
  const { sha256 } = await checkpointHashes(join(src, 'model.safetensors'), cacheDir, onProgress);
  const out = join(cacheDir, `blip-v${BLIP_CONVERTER_VERSION}-${sha256.slice(0, 16)}`);
  if (existsSync(out)) return out;
  await mkdir(cacheDir, { recursive: true });
  try {
    await convertBlip(src, out);
  } catch (err) {
    // Another process finished the same conversion first: theirs is identical.
    if (existsSync(out)) return out;
    throw err;
  }
  return out;
}
