import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { recordSource } from '../onnx/derived-source.js';
import { openWeightFile } from './checkpoint-store.js';
import { buildControlNet } from './controlnet.js';
import { detectControlNet, type ControlNetConfigOverrides } from './controlnet-detect.js';
import { checkpointHashes, type EnsureProgress } from './converted-cache.js';
import { assembleFolder, cachedConversion, writeGraph } from './converted-folder.js';
import { NORM_EPS, TIME_EMBED_DIM, boundedNum, num, readConfig, readConfigBytes } from './diffusers-folder.js';
import { CheckpointError } from './errors.js';
import { ComponentWeights } from './weights.js';

/**
 * `--control model=control_v11p_sd15_canny.pth` (or its .safetensors, or a diffusers ControlNet
 * folder): the weights converted once into the ONNX ControlNet folder the pipeline loads
 * (`controlnet/model.onnx`), cached under `<cacheDir>/controlnet-<sha256 of the weights>/` with
 * controlnet.json recording A1111's identity of it: sd-webui-controlnet's "Model: name [hash]" is
 * the file's name without extension and the old 8-digit model hash (64 KiB at 1 MiB).
 */

export interface ControlNetRecord {
  name: string;
  sha256: string;
  /** sd-webui-controlnet's hash in "Model: name [hash]". */
  a1111OldHash: string;
  /** The width of the text it attends to (768 SD 1.x, 1024 SD 2.x, 2048 SDXL). */
  contextWidth: number;
  converter: number;
}

export const CONTROLNET_RECORD = 'controlnet.json';
/** Bumped when the builder changes the graph a ControlNet converts to. */
const CONTROLNET_CONVERTER_VERSION = 1;

/** The weights of a ControlNet path: the file itself, or a diffusers folder's weight file and its config.json. */
export function controlNetFiles(path: string): { weights: string; configDir?: string } {
  if (!statSync(path).isDirectory()) return { weights: path };
  for (const name of ['diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.fp16.safetensors', 'diffusion_pytorch_model.bin', 'diffusion_pytorch_model.fp16.bin']) {
    if (existsSync(join(path, name))) {
      if (!existsSync(join(path, 'config.json'))) throw new CheckpointError(`${path} has ${name} but no config.json; a diffusers ControlNet folder has both`);
      return { weights: join(path, name), configDir: path };
    }
  }
  throw new CheckpointError(`${path} holds no ControlNet weights (diffusion_pytorch_model.safetensors and config.json); pass the ControlNet file itself or a diffusers ControlNet folder`);
}

/** What a diffusers ControlNet's config.json says that the weights cannot, after refusing what the builder does not build. */
function configOverrides(dir: string): ControlNetConfigOverrides {
  const config = readConfig(dir, 'config.json');
  const path = join(dir, 'config.json');
  if (config['_class_name'] !== undefined && config['_class_name'] !== 'ControlNetModel') {
    throw new CheckpointError(`${path}: a ${JSON.stringify(config['_class_name'])}, not a ControlNetModel; pass a ControlNet folder`);
  }
  if (config['global_pool_conditions'] === true) throw new CheckpointError(`${path}: global_pool_conditions (a shuffle-type ControlNet) is not supported yet; use another ControlNet`);
  if (config['controlnet_conditioning_channel_order'] === 'bgr') throw new CheckpointError(`${path}: a ControlNet reading BGR control images is not supported; use an RGB one`);
  for (const key of ['class_embed_type', 'encoder_hid_dim']) {
    if (config[key] !== null && config[key] !== undefined) throw new CheckpointError(`${path}: ${key} is set; diffuse builds SD 1.x/2.x and SDXL ControlNets, which set neither`);
  }
  const addition = config['addition_embed_type'];
  if (addition !== null && addition !== undefined && addition !== 'text_time') {
    throw new CheckpointError(`${path}: addition_embed_type ${JSON.stringify(addition)} is not SDXL's text_time; diffuse builds SD 1.x/2.x and SDXL ControlNets`);
  }
  if (config['mid_block_type'] !== undefined && config['mid_block_type'] !== 'UNetMidBlock2DCrossAttn') {
    throw new CheckpointError(`${path}: mid_block_type ${JSON.stringify(config['mid_block_type'])}; diffuse builds ControlNets whose middle block has attention (UNetMidBlock2DCrossAttn)`);
  }
  const heads = config['num_attention_heads'] ?? config['attention_head_dim'];
  const levels = Array.isArray(config['block_out_channels']) ? config['block_out_channels'].length : 0;
  const perLevel = typeof heads === 'number' ? Array.from({ length: levels }, () => heads) : Array.isArray(heads) && heads.every((h) => typeof h === 'number') ? (heads as number[]) : undefined;
  if (heads !== undefined && heads !== null && !perLevel) throw new CheckpointError(`${path}: attention_head_dim is ${JSON.stringify(heads)}, expected a whole number or a list of them`);
  return {
    ...(perLevel ? { heads: perLevel } : {}),
    normGroups: num(config, 'norm_num_groups', path, 32),
    normEps: boundedNum(config, 'norm_eps', path, NORM_EPS, 1e-5),
    flipSinToCos: config['flip_sin_to_cos'] !== false,
    freqShift: num(config, 'freq_shift', path, 0),
    ...(addition === 'text_time' ? { additionTimeEmbedDim: boundedNum(config, 'addition_time_embed_dim', path, TIME_EMBED_DIM) } : {}),
    declared: Object.fromEntries(DECLARED.filter((k) => config[k] !== undefined && config[k] !== null).map((k) => [k, config[k]])),
  };
}

/** config.json's numbers the weights say too: checked against them by detectControlNet. */
const DECLARED = ['block_out_channels', 'layers_per_block', 'transformer_layers_per_block', 'cross_attention_dim', 'projection_class_embeddings_input_dim', 'in_channels', 'conditioning_channels', 'conditioning_embedding_out_channels'] as const;

/** `name`: what the record calls it; default the file's name without extension, or the diffusers folder's name. */
export async function convertControlNet(path: string, outDir: string, hashes: { sha256: string; a1111OldHash: string }, name?: string): Promise<ControlNetRecord> {
  const files = controlNetFiles(path);
  const store = await openWeightFile(files.weights);
  try {
    const { config, locate } = detectControlNet(store, files.configDir ? configOverrides(files.configDir) : {});
    const graph = buildControlNet(new ComponentWeights('ControlNet', store, locate), config, 'float32');
    const record: ControlNetRecord = { name: name ?? (files.configDir ? basename(files.configDir) : basename(path, extname(path))), ...hashes, contextWidth: config.unet.crossAttentionDim, converter: CONTROLNET_CONVERTER_VERSION };
    await assembleFolder(outDir, async (tmp) => {
      await writeGraph(graph, tmp, 'controlnet', 'ControlNet');
      await writeFile(join(tmp, CONTROLNET_RECORD), `${JSON.stringify(record, null, 2)}\n`);
      recordSource(tmp, files.weights);
    });
    return record;
  } catch (err) {
    if (err instanceof RangeError) throw new CheckpointError(`${files.weights}: ${err.message}`, { cause: err });
    throw err;
  } finally {
    await store.close();
  }
}

/** controlnet.json of a converted ControlNet folder, or undefined for any other folder. */
export function readControlNetRecord(dir: string): ControlNetRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(join(dir, CONTROLNET_RECORD), 'utf8')) as ControlNetRecord;
    return typeof record.name === 'string' && typeof record.a1111OldHash === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The converted folder of a ControlNet file or diffusers folder, converting it first when the cache has none; `name`
 * as convertControlNet's (a registry snapshot's folder is called snapshot/: its entry names it).
 */
export async function ensureConvertedControlNet(path: string, cacheDir: string, onProgress?: (event: EnsureProgress) => void, name?: string): Promise<string> {
  const files = controlNetFiles(path);
  const hashes = await checkpointHashes(files.weights, cacheDir, onProgress);
  // A folder's config.json sets what the weights cannot say (heads, norms): part of its identity.
  const config = files.configDir ? `-${createHash('sha256').update(readConfigBytes(join(files.configDir, 'config.json'))).digest('hex').slice(0, 8)}` : '';
  const dir = join(cacheDir, `controlnet-${hashes.sha256.slice(0, 16)}${config}`);
  return cachedConversion(dir, (d) => readControlNetRecord(d)?.converter === CONTROLNET_CONVERTER_VERSION, (d) => convertControlNet(path, d, { sha256: hashes.sha256, a1111OldHash: hashes.a1111OldHash }, name));
}
