import type { ControlNetConfig } from './controlnet.js';
import { headsOf, SD1_UNET_HEADS } from './detect.js';
import { CheckpointError } from './errors.js';
import { sameNames, unetLocator, type Locator } from './ldm-keys.js';
import type { DownBlock, UnetConfig } from './model-config.js';
import type { TensorStore } from './weights.js';

/**
 * What ControlNet a weight file holds, read off its keys and shapes, in any of the layouts users
 * have them in: lllyasviel's and A1111's files (`control_v11p_sd15_canny.pth`, the extracted fp16
 * `.safetensors`: LDM names under `control_model.`, or the same without the prefix) and diffusers'
 * (`diffusion_pytorch_model.safetensors`, the names the builders use). diffusers'
 * convert_controlnet_checkpoint reads the first two the same way. Every width and count comes from
 * the tensors; the heads from the family (SD 1.x: 8; SD 2.x, whose text is 1024 wide, and SDXL:
 * 64-wide heads), as for single-file checkpoints (detect.ts), unless a diffusers config.json says.
 * SDXL ControlNets (diffusers' layout: an add_embedding of the pooled text and time ids, as
 * diffusers/controlnet-canny-sdxl-1.0) have a transformer depth per level, read off the weights.
 */

export interface DetectedControlNet {
  config: ControlNetConfig;
  locate: Locator;
}

/** What a diffusers config.json fixes that the weights cannot say. */
export interface ControlNetConfigOverrides {
  heads?: number[];
  normGroups?: number;
  normEps?: number;
  flipSinToCos?: boolean;
  freqShift?: number;
  /** SDXL: how wide each time id is embedded (addition_time_embed_dim). */
  additionTimeEmbedDim?: number;
  /** config.json's values of what the weights also say (block_out_channels, ...): refused when they differ. */
  declared?: Record<string, unknown>;
}

/**
 * A config.json that contradicts its weights belongs to another ControlNet (diffusers' from_pretrained refuses
 * the pair on the first shape that differs): refused in one line, naming the first value that differs.
 */
function checkDeclared(store: TensorStore, declared: Record<string, unknown>, levels: number, found: Record<string, number | number[]>): void {
  for (const [key, value] of Object.entries(found)) {
    if (!(key in declared)) continue;
    // transformer_layers_per_block may be one number for every level.
    const said = key === 'transformer_layers_per_block' && typeof declared[key] === 'number' ? Array<unknown>(levels).fill(declared[key]) : declared[key];
    if (JSON.stringify(said) !== JSON.stringify(value)) {
      const shown = JSON.stringify(declared[key]) ?? String(declared[key]);
      refuse(store, `config.json's ${key} is ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}, the weights' ${JSON.stringify(value)}; the folder's config.json belongs to another ControlNet: re-download the folder`);
    }
  }
}

/** SDXL's addition_time_embed_dim and its six time ids (original size, crop, target size): what an SDXL ControlNet file without config.json is read with. */
const SDXL_TIME_EMBED_DIM = 256;
const SDXL_TIME_IDS = 6;

const LDM_PREFIX = 'control_model.';

function refuse(store: TensorStore, message: string): never {
  throw new CheckpointError(`${store.label}: ${message}`);
}

/** The LDM layout: its prefix ('' or control_model.), or undefined for diffusers names. */
function ldmPrefix(has: (key: string) => boolean): string | undefined {
  if (has(`${LDM_PREFIX}input_hint_block.0.weight`)) return LDM_PREFIX;
  if (has('input_hint_block.0.weight')) return '';
  return undefined;
}

export function detectControlNet(store: TensorStore, overrides: ControlNetConfigOverrides = {}): DetectedControlNet {
  const keys = new Set(store.keys());
  const has = (key: string) => keys.has(key);
  if (has('difference')) {
    refuse(store, 'a "diff" ControlNet (it stores its difference from an SD 1.5 model); use the full ControlNet file (e.g. control_v11p_sd15_canny.pth or its fp16 .safetensors)');
  }
  const prefix = ldmPrefix(has);
  if (prefix === undefined && !has('controlnet_cond_embedding.conv_in.weight')) {
    refuse(store, 'not a ControlNet (no input_hint_block or controlnet_cond_embedding weights: a model checkpoint, LoRA or T2I-Adapter?); pass a ControlNet file such as control_v11p_sd15_canny.pth');
  }
  if (prefix !== undefined && has(`${prefix}label_emb.0.0.weight`)) {
    refuse(store, "an SDXL ControlNet in the LDM layout (label_emb); diffuse converts SDXL ControlNets in diffusers' layout: use its diffusion_pytorch_model.safetensors (as diffusers/controlnet-canny-sdxl-1.0 publishes it)");
  }
  const sdxl = prefix === undefined && has('add_embedding.linear_1.weight');
  const structure = prefix === undefined ? diffusersStructure(store, keys) : ldmStructure(store, keys, prefix);
  const inner = prefix === undefined ? sameNames : unetLocator({ layersPerBlock: structure.layersPerBlock, upBlockTypes: [] }, prefix);
  const hint = structure.hintConvs;
  const locate: Locator = prefix === undefined ? sameNames : (name) => ldmControlKey(name, prefix, hint) ?? inner(name);
  const shape = (name: string): number[] => {
    const found = locate(name);
    const described = found && store.describe(found.key);
    if (!described) refuse(store, `no tensor for the ControlNet's ${name}${found ? ` (key ${found.key})` : ''}; the file is incomplete or not an SD ControlNet`);
    return described.shape;
  };
  const present = (name: string): boolean => {
    const found = locate(name);
    return Boolean(found && store.describe(found.key));
  };
  const count = (prefixName: string, suffix: string): number => {
    let n = 0;
    while (present(`${prefixName}${n}${suffix}`)) n++;
    return n;
  };

  const levels = structure.levels;
  const [first, inChannels] = shape('conv_in.weight') as [number, number];
  const blockOutChannels = Array.from({ length: levels }, (_, l) => shape(`down_blocks.${l}.resnets.0.conv2.weight`)[0]!);
  const downBlockTypes: DownBlock[] = Array.from({ length: levels }, (_, l) => (present(`down_blocks.${l}.attentions.0.proj_in.weight`) ? 'CrossAttnDownBlock2D' : 'DownBlock2D'));
  const midAttention = 'mid_block.attentions.0.';
  const crossAttentionDim = shape(`${midAttention}transformer_blocks.0.attn2.to_k.weight`)[1]!;
  const sd1 = !sdxl && crossAttentionDim !== 1024;
  const midDepth = count(`${midAttention}transformer_blocks.`, '.norm1.weight');
  // SDXL's depth varies per level (1, 2, 10); a level without attention counts 1, as its config says.
  const depths = downBlockTypes.map((t, l) => (t === 'CrossAttnDownBlock2D' ? count(`down_blocks.${l}.attentions.0.transformer_blocks.`, '.norm1.weight') : 1));
  if (sdxl && depths[levels - 1] !== midDepth) refuse(store, `the middle block has ${midDepth} transformer layers but the last level ${depths[levels - 1]}; diffusers' ControlNet gives them the same depth`);
  const unet: UnetConfig = {
    ...BASE,
    inChannels,
    outChannels: inChannels,
    blockOutChannels,
    layersPerBlock: structure.layersPerBlock,
    downBlockTypes,
    upBlockTypes: [],
    crossAttentionDim,
    heads: overrides.heads ?? blockOutChannels.map((c) => (sd1 ? SD1_UNET_HEADS : headsOf(c))),
    useLinearProjection: shape(`${midAttention}proj_in.weight`).length === 2,
    transformerLayersPerBlock: sdxl ? depths : midDepth,
    ...(sdxl ? { addition: sdxlAddition(store, shape('add_embedding.linear_1.weight')[1]!, overrides.additionTimeEmbedDim ?? SDXL_TIME_EMBED_DIM) } : {}),
    ...(overrides.normGroups !== undefined ? { normGroups: overrides.normGroups } : {}),
    ...(overrides.normEps !== undefined ? { normEps: overrides.normEps } : {}),
    ...(overrides.flipSinToCos !== undefined ? { flipSinToCos: overrides.flipSinToCos } : {}),
    ...(overrides.freqShift !== undefined ? { freqShift: overrides.freqShift } : {}),
  };
  if (first !== blockOutChannels[0]) refuse(store, `conv_in makes ${first} channels but the first level is ${blockOutChannels[0]} wide; not an SD ControlNet`);
  const [firstHint, conditioningChannels] = shape('controlnet_cond_embedding.conv_in.weight') as [number, number];
  const blocks = count('controlnet_cond_embedding.blocks.', '.weight');
  if (blocks % 2 !== 0) refuse(store, `the control image embedding has ${blocks} inner convolutions; a ControlNet's come in pairs`);
  const conditioningEmbedding = [firstHint, ...Array.from({ length: blocks / 2 }, (_, i) => shape(`controlnet_cond_embedding.blocks.${2 * i + 1}.weight`)[0]!)];
  checkDeclared(store, overrides.declared ?? {}, levels, {
    in_channels: inChannels,
    block_out_channels: blockOutChannels,
    transformer_layers_per_block: depths,
    cross_attention_dim: crossAttentionDim,
    layers_per_block: structure.layersPerBlock,
    conditioning_channels: conditioningChannels,
    conditioning_embedding_out_channels: conditioningEmbedding,
    ...(sdxl ? { projection_class_embeddings_input_dim: shape('add_embedding.linear_1.weight')[1]! } : {}),
  });
  const residuals = 1 + levels * structure.layersPerBlock + levels - 1;
  const zeroConvs = count('controlnet_down_blocks.', '.weight');
  if (zeroConvs !== residuals || !present('controlnet_mid_block.weight')) {
    refuse(store, `${zeroConvs} down-block outputs (zero convolutions) for ${residuals} down-block residuals, or no mid-block output; not an SD ControlNet`);
  }
  return { config: { unet, conditioningChannels, conditioningEmbedding }, locate };
}

/** The pooled text and six time ids add_embedding reads, `input` numbers in all. */
function sdxlAddition(store: TensorStore, input: number, timeEmbedDim: number): NonNullable<UnetConfig['addition']> {
  const textEmbeds = input - SDXL_TIME_IDS * timeEmbedDim;
  if (textEmbeds <= 0) refuse(store, `add_embedding reads ${input} numbers, fewer than six time ids of ${timeEmbedDim}; give the ControlNet's config.json (addition_time_embed_dim) beside it`);
  return { textEmbeds, timeIds: SDXL_TIME_IDS, timeEmbedDim };
}

/** What every SD 1.x/2.x ControlNet shares (a config.json may say otherwise). */
const BASE = { normGroups: 32, normEps: 1e-5, flipSinToCos: true, freqShift: 0, sampleSize: 64 };

interface Structure {
  levels: number;
  layersPerBlock: number;
  /** LDM input_hint_block indices holding convolutions (the SiLUs between them hold nothing). */
  hintConvs: number[];
}

function indices(keys: Set<string>, prefix: string): number[] {
  const found = new Set<number>();
  for (const k of keys) {
    if (!k.startsWith(prefix)) continue;
    const m = /^(\d+)\./.exec(k.slice(prefix.length));
    if (m) found.add(Number(m[1]));
  }
  return [...found].sort((a, b) => a - b);
}

/** LDM: input_blocks 0 (conv_in), then per level its resnets and (but the last) a downsampler `.0.op`. */
function ldmStructure(store: TensorStore, keys: Set<string>, prefix: string): Structure {
  const blocks = indices(keys, `${prefix}input_blocks.`);
  const firstDown = blocks.find((i) => keys.has(`${prefix}input_blocks.${i}.0.op.weight`));
  const layersPerBlock = (firstDown ?? blocks.length) - 1;
  const levels = blocks.length / (layersPerBlock + 1);
  if (layersPerBlock < 1 || !Number.isInteger(levels) || !blocks.every((b, i) => b === i)) {
    refuse(store, `the ControlNet's input blocks (${blocks.length}) are not laid out as in Stable Diffusion`);
  }
  return { levels, layersPerBlock, hintConvs: indices(keys, `${prefix}input_hint_block.`) };
}

function diffusersStructure(store: TensorStore, keys: Set<string>): Structure {
  const levels = indices(keys, 'down_blocks.').length;
  const layersPerBlock = indices(keys, 'down_blocks.0.resnets.').length;
  if (levels < 1 || layersPerBlock < 1) refuse(store, 'the ControlNet has no down blocks (down_blocks.*); not an SD ControlNet');
  return { levels, layersPerBlock, hintConvs: [] };
}

/**
 * The ControlNet's own parts in LDM names: input_hint_block is one Sequential of convolutions and
 * SiLUs (conv_in, the pairs, conv_out last), zero_convs.i.0 and middle_block_out.0 the 1x1 outputs.
 */
function ldmControlKey(name: string, prefix: string, hintConvs: readonly number[]): { key: string } | undefined {
  const at = (rest: string) => ({ key: prefix + rest });
  let m = /^controlnet_cond_embedding\.conv_in\.(.+)$/.exec(name);
  if (m) return at(`input_hint_block.${hintConvs[0] ?? 0}.${m[1]}`);
  m = /^controlnet_cond_embedding\.blocks\.(\d+)\.(.+)$/.exec(name);
  // A block past the inner ones names no tensor (the last conv is conv_out): the count stops there.
  if (m) return Number(m[1]) + 2 < hintConvs.length ? at(`input_hint_block.${hintConvs[Number(m[1]) + 1]}.${m[2]}`) : undefined;
  m = /^controlnet_cond_embedding\.conv_out\.(.+)$/.exec(name);
  if (m) return at(`input_hint_block.${hintConvs[hintConvs.length - 1] ?? 0}.${m[1]}`);
  m = /^controlnet_down_blocks\.(\d+)\.(.+)$/.exec(name);
  if (m) return at(`zero_convs.${m[1]}.0.${m[2]}`);
  m = /^controlnet_mid_block\.(.+)$/.exec(name);
  if (m) return at(`middle_block_out.0.${m[1]}`);
  return undefined;
}
