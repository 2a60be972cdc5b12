import { CheckpointError } from './errors.js';
import { LDM_PREFIX, clipLocator, openClipLocator, unetLocator, vaeLocator, type Locator } from './ldm-keys.js';
import type { DownBlock, Family, ModelConfig, TextEncoderConfig, UnetConfig, VaeConfig, Variant } from './model-config.js';
import type { TensorStore } from './weights.js';

/**
 * What model a single-file (LDM layout) checkpoint holds, read off its keys and shapes: the
 * family from the text encoder (CLIP ViT-L under cond_stage_model.transformer: SD 1.x; OpenCLIP
 * ViT-H under cond_stage_model.model: SD 2.x), the variant from the UNet's input channels (4, 9
 * inpainting, 5 depth), every width and count from the tensors. What the weights cannot say
 * comes from the family, as the original configs fix it: SD 1.x's UNet has 8 heads per
 * attention, SD 2.x's and both text encoders' heads are 64 wide; SD 2.x's text encoder stops at
 * OpenCLIP's penultimate layer.
 */

export interface DetectedModel {
  config: Omit<ModelConfig, 'prediction'>;
  /** textEncoder is absent in the SDXL refiner (bigG alone). */
  locators: { textEncoder?: Locator; textEncoder2?: Locator; unet: Locator; vae: Locator };
}

/** Width of one attention head where the family fixes the width, not the count. */
const HEAD_WIDTH = 64;
export const SD1_UNET_HEADS = 8;

/**
 * Heads of `width` 64-wide heads. Widths under 64 occur only in test-sized models; they get one
 * head, so a tiny checkpoint still builds.
 */
export function headsOf(width: number): number {
  if (width < HEAD_WIDTH) return 1;
  if (width % HEAD_WIDTH !== 0) throw new RangeError(`width ${width} is not a whole number of ${HEAD_WIDTH}-wide heads`);
  return width / HEAD_WIDTH;
}

/** A checkpoint's keys and shapes, for reading a model's structure off them. */
export class Keys {
  private readonly all: Set<string>;

  constructor(readonly store: TensorStore) {
    this.all = new Set(store.keys());
  }

  has(key: string): boolean {
    return this.all.has(key);
  }

  some(prefix: string): boolean {
    for (const k of this.all) if (k.startsWith(prefix)) return true;
    return false;
  }

  shape(key: string): number[] {
    const d = this.store.describe(key);
    if (!d) throw new CheckpointError(`${this.store.label}: no tensor ${key}; the checkpoint is incomplete or of an unknown layout`);
    return d.shape;
  }

  /** The distinct numbers N in keys `${prefix}N.`. */
  indices(prefix: string): number[] {
    const found = new Set<number>();
    const at = prefix.length;
    for (const k of this.all) {
      if (!k.startsWith(prefix)) continue;
      const m = /^(\d+)\./.exec(k.slice(at));
      if (m) found.add(Number(m[1]));
    }
    return [...found].sort((a, b) => a - b);
  }
}

function refuse(store: TensorStore, message: string): never {
  throw new CheckpointError(`${store.label}: ${message}`);
}

export function detectSingleFile(store: TensorStore): DetectedModel {
  const keys = new Keys(store);
  if (keys.some('conditioner.embedders.')) return detectSdxl(keys);
  const family: Family | undefined = keys.some(LDM_PREFIX.clip) ? 'sd1' : keys.some(LDM_PREFIX.openClip) ? 'sd2' : undefined;
  const missing = [
    !keys.some(LDM_PREFIX.unet) && 'the UNet (model.diffusion_model.*)',
    !keys.some(`${LDM_PREFIX.vae}encoder.`) && 'the VAE encoder (first_stage_model.encoder.*)',
    !keys.some(`${LDM_PREFIX.vae}decoder.`) && 'the VAE decoder (first_stage_model.decoder.*)',
    !family && 'a text encoder (cond_stage_model.transformer.* or cond_stage_model.model.*)',
  ].filter((m): m is string => typeof m === 'string');
  if (missing.length) {
    refuse(store, `not a complete Stable Diffusion checkpoint: missing ${missing.join(', ')} (a LoRA, VAE or UNet-only file? pass a full model checkpoint)`);
  }
  const text = family === 'sd1' ? clipText(keys) : openClipText(keys);
  const unet = unetConfig(keys, family!);
  if (unet.config.crossAttentionDim !== text.config.hidden) {
    refuse(store, `the UNet attends to ${unet.config.crossAttentionDim}-wide text but the text encoder is ${text.config.hidden} wide; the file mixes models`);
  }
  const vae = vaeConfig(keys, unet.config.sampleSize);
  return {
    config: { family: family!, variant: unet.variant, textEncoder: text.config, unet: unet.config, vae: vae.config },
    locators: { textEncoder: text.locator, unet: unet.locator, vae: vae.locator },
  };
}

/**
 * SDXL (SGM layout): CLIP ViT-L under conditioner.embedders.0.transformer and OpenCLIP bigG under
 * conditioner.embedders.1.model, both run to their last layer (the pipeline reads the penultimate
 * one's states, and bigG's final norm and text_projection make the pooled text); the UNet's
 * label_emb takes the pooled text and six sinusoidally embedded size numbers. The refiner has bigG
 * alone, as conditioner.embedders.0.model, and five numbers (sizes, crop, aesthetic score); its
 * UNet attends to bigG's states only. Either becomes the diffusers folder its diffusers form would.
 */
function detectSdxl(keys: Keys): DetectedModel {
  const { store } = keys;
  const refiner = !keys.some(LDM_PREFIX.sdxlClip) && keys.some(LDM_PREFIX.sdxlRefinerOpenClip);
  const bigG = refiner ? LDM_PREFIX.sdxlRefinerOpenClip : LDM_PREFIX.sdxlOpenClip;
  if (!refiner && (!keys.some(LDM_PREFIX.sdxlClip) || !keys.some(LDM_PREFIX.sdxlOpenClip))) {
    refuse(store, 'an SDXL checkpoint without its text encoders: the base has CLIP ViT-L and bigG (conditioner.embedders.0.transformer.* and .1.model.*), the refiner bigG alone (conditioner.embedders.0.model.*)');
  }
  const missing = [
    !keys.some(LDM_PREFIX.unet) && 'the UNet (model.diffusion_model.*)',
    !keys.some(`${LDM_PREFIX.vae}decoder.`) && 'the VAE (first_stage_model.*)',
    !keys.has(`${LDM_PREFIX.unet}label_emb.0.0.weight`) && "the UNet's label_emb (SDXL's added conditioning)",
    !keys.has(`${bigG}text_projection`) && "bigG's text_projection",
  ].filter((m): m is string => typeof m === 'string');
  if (missing.length) refuse(store, `not a complete SDXL ${refiner ? 'refiner ' : ''}checkpoint: missing ${missing.join(', ')}`);
  const first = refiner ? undefined : clipText(keys, LDM_PREFIX.sdxlClip);
  const second = openClipText(keys, bigG, 0);
  const projection = keys.shape(`${bigG}text_projection`)[1]!;
  const textEncoder = first && { ...first.config, sdxl: {} };
  const textEncoder2 = { ...second.config, sdxl: { projection } };
  const unet = unetConfig(keys, 'sdxl');
  const context = (textEncoder?.hidden ?? 0) + textEncoder2.hidden;
  if (unet.config.crossAttentionDim !== context) {
    refuse(store, `the UNet attends to ${unet.config.crossAttentionDim}-wide text but the text encoder${refiner ? ' gives' : 's give'} ${textEncoder ? `${textEncoder.hidden} + ` : ''}${textEncoder2.hidden}; the file mixes models`);
  }
  const [, addIn] = keys.shape(`${LDM_PREFIX.unet}label_emb.0.0.weight`) as [number, number];
  // label_emb reads the pooled text then 6 embedded numbers (sizes and crop; the refiner's 5: sizes, crop, aesthetic score), each equally wide.
  const timeIds = refiner ? 5 : 6;
  const timeEmbedDim = (addIn - projection) / timeIds;
  if (!Number.isInteger(timeEmbedDim) || timeEmbedDim < 2 || timeEmbedDim % 2 !== 0) {
    refuse(store, `the UNet's label_emb reads ${addIn} numbers, which are not ${projection} of pooled text and ${timeIds === 6 ? 'six' : 'five'} embedded numbers`);
  }
  if (unet.variant === 'depth') refuse(store, 'a 5-channel (depth) SDXL UNet; SDXL checkpoints convert as base, refiner or inpainting models');
  if (refiner && unet.variant !== 'base') refuse(store, `a ${unet.config.inChannels}-channel SDXL refiner UNet; the refiner takes 4`);
  const vae = vaeConfig(keys, unet.config.sampleSize);
  return {
    config: {
      family: 'sdxl',
      variant: unet.variant,
      ...(textEncoder ? { textEncoder } : {}),
      textEncoder2,
      unet: { ...unet.config, addition: { textEmbeds: projection, timeIds, timeEmbedDim } },
      vae: { ...vae.config, scalingFactor: 0.13025 },
    },
    locators: { ...(first ? { textEncoder: first.locator } : {}), textEncoder2: second.locator, unet: unet.locator, vae: vae.locator },
  };
}

function clipText(keys: Keys, prefix: string = LDM_PREFIX.clip): { config: TextEncoderConfig; locator: Locator } {
  const hasTextModel = keys.some(`${prefix}text_model.`);
  const base = `${prefix}${hasTextModel ? 'text_model.' : ''}`;
  const [vocabSize, hidden] = keys.shape(`${base}embeddings.token_embedding.weight`) as [number, number];
  const layers = keys.indices(`${base}encoder.layers.`).length;
  const config: TextEncoderConfig = {
    vocabSize,
    hidden,
    layers,
    heads: headsOf(hidden),
    intermediate: keys.shape(`${base}encoder.layers.0.mlp.fc1.weight`)[0]!,
    positions: keys.shape(`${base}embeddings.position_embedding.weight`)[0]!,
    activation: 'quick_gelu',
    layerNormEps: 1e-5,
  };
  return { config, locator: clipLocator(prefix, hasTextModel) };
}

/** `unused`: last blocks the model does not run (SD 2.x reads the penultimate layer's output through the final norm). */
function openClipText(keys: Keys, p: string = LDM_PREFIX.openClip, unused = 1): { config: TextEncoderConfig; locator: Locator } {
  const [vocabSize, hidden] = keys.shape(`${p}token_embedding.weight`) as [number, number];
  const blocks = keys.indices(`${p}transformer.resblocks.`).length;
  if (blocks < 2) refuse(keys.store, `the OpenCLIP text encoder has ${blocks} layer(s); SD 2.x and SDXL read the penultimate one`);
  const config: TextEncoderConfig = {
    vocabSize,
    hidden,
    layers: blocks - unused,
    heads: headsOf(hidden),
    intermediate: keys.shape(`${p}transformer.resblocks.0.mlp.c_fc.weight`)[0]!,
    positions: keys.shape(`${p}positional_embedding`)[0]!,
    activation: 'gelu',
    layerNormEps: 1e-5,
  };
  return { config, locator: openClipLocator(hidden, p) };
}

const VARIANTS: Readonly<Record<number, Variant>> = { 4: 'base', 9: 'inpaint', 5: 'depth' };

function unetConfig(keys: Keys, family: Family): { config: UnetConfig; locator: Locator; variant: Variant } {
  const p = LDM_PREFIX.unet;
  const [first, inChannels] = keys.shape(`${p}input_blocks.0.0.weight`) as [number, number];
  const variant = VARIANTS[inChannels];
  if (!variant) refuse(keys.store, `the UNet takes ${inChannels} input channels; SD's are 4 (txt2img), 9 (inpainting) or 5 (depth)`);
  const blocks = keys.indices(`${p}input_blocks.`);
  const firstDown = blocks.find((i) => keys.has(`${p}input_blocks.${i}.0.op.weight`));
  const layersPerBlock = (firstDown ?? blocks.length) - 1;
  const levels = blocks.length / (layersPerBlock + 1);
  const downAt = (level: number): number => level * (layersPerBlock + 1) + 1;
  const structured =
    layersPerBlock >= 1 &&
    Number.isInteger(levels) &&
    blocks.every((b, i) => b === i) &&
    Array.from({ length: levels - 1 }, (_, l) => (l + 1) * (layersPerBlock + 1)).every((i) => keys.has(`${p}input_blocks.${i}.0.op.weight`)) &&
    keys.indices(`${p}output_blocks.`).length === levels * (layersPerBlock + 1);
  if (!structured) refuse(keys.store, 'the UNet\'s blocks are not laid out as in Stable Diffusion (a ControlNet, upscaler or other model?)');
  const blockOutChannels = Array.from({ length: levels }, (_, l) => keys.shape(`${p}input_blocks.${downAt(l)}.0.out_layers.3.weight`)[0]!);
  const downBlockTypes: DownBlock[] = Array.from({ length: levels }, (_, l) => (keys.has(`${p}input_blocks.${downAt(l)}.1.proj_in.weight`) ? 'CrossAttnDownBlock2D' : 'DownBlock2D'));
  const attention = `${p}middle_block.1.`;
  const projIn = keys.shape(`${attention}proj_in.weight`);
  const midDepth = keys.indices(`${attention}transformer_blocks.`).length;
  // SDXL's depth varies per level (1, 2, 10); a level without attention counts 1, as its diffusers config says.
  const depths = downBlockTypes.map((t, l) => (t === 'CrossAttnDownBlock2D' ? keys.indices(`${p}input_blocks.${downAt(l)}.1.transformer_blocks.`).length : 1));
  if (family === 'sdxl' && depths[levels - 1] !== midDepth) refuse(keys.store, `the middle block has ${midDepth} transformer layers but the last level ${depths[levels - 1]}; diffusers' UNet gives them the same depth`);
  const config: UnetConfig = {
    inChannels,
    outChannels: keys.shape(`${p}out.2.weight`)[0]!,
    blockOutChannels,
    layersPerBlock,
    downBlockTypes,
    upBlockTypes: [...downBlockTypes].reverse().map((t) => (t === 'CrossAttnDownBlock2D' ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    crossAttentionDim: keys.shape(`${attention}transformer_blocks.0.attn2.to_k.weight`)[1]!,
    heads: blockOutChannels.map((c) => (family === 'sd1' ? SD1_UNET_HEADS : headsOf(c))),
    useLinearProjection: projIn.length === 2,
    transformerLayersPerBlock: family === 'sdxl' ? depths : midDepth,
    normGroups: 32,
    normEps: 1e-5,
    flipSinToCos: true,
    freqShift: 0,
    sampleSize: 64,
  };
  if (first !== blockOutChannels[0]) refuse(keys.store, `conv_in makes ${first} channels but the first level is ${blockOutChannels[0]} wide`);
  return { config, locator: unetLocator(config), variant };
}

function vaeConfig(keys: Keys, latentSize: number): { config: VaeConfig; locator: Locator } {
  const p = `${LDM_PREFIX.vae}encoder.`;
  const levels = keys.indices(`${p}down.`).length;
  const [first, inChannels] = keys.shape(`${p}conv_in.weight`) as [number, number];
  const blockOutChannels = Array.from({ length: levels }, (_, l) => keys.shape(`${p}down.${l}.block.0.conv2.weight`)[0]!);
  if (levels < 1 || first !== blockOutChannels[0]) refuse(keys.store, 'the VAE encoder is not laid out as in Stable Diffusion');
  const config: VaeConfig = {
    inChannels,
    outChannels: keys.shape(`${LDM_PREFIX.vae}decoder.conv_out.weight`)[0]!,
    blockOutChannels,
    layersPerBlock: keys.indices(`${p}down.0.block.`).length,
    latentChannels: keys.shape(`${LDM_PREFIX.vae}decoder.conv_in.weight`)[1]!,
    normGroups: 32,
    scalingFactor: 0.18215,
    sampleSize: latentSize * 2 ** (levels - 1),
  };
  return { config, locator: vaeLocator(levels) };
}
