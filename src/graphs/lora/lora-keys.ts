/**
 * Where a LoRA tensor belongs: every format's key becomes one lookup name in kohya's spelling
 * (`lora_unet_<module path with _>`, `lora_te_<...>`) plus the part of the module it holds
 * (`lora_down.weight`, `hada_w1_a`, `alpha`, ...), the spelling the model's targets are indexed by
 * (lora-targets.ts). kohya and LyCORIS files already use it; diffusers/PEFT files name the module
 * path with dots under `unet.` / `text_encoder.`, and diffusers' older attention-processor files
 * name `to_q_lora` under `processor`.
 */

/**
 * The graph a module belongs to: the UNet, the (first) text encoder — SD's only one, SDXL's CLIP ViT-L,
 * kohya's `lora_te_` and SDXL's `lora_te1_` alike, as diffusers reads both — or SDXL's second (`lora_te2_`).
 */
export type LoraPrefix = 'lora_unet_' | 'lora_te_' | 'lora_te2_';

export interface LoraKey {
  /** kohya's name of the module, e.g. lora_unet_down_blocks_0_attentions_0_proj_in. */
  module: string;
  /** The tensor's role in kohya/LyCORIS terms, e.g. lora_down.weight, lora_up.weight, alpha, hada_w1_a. */
  part: string;
}

/** diffusers/PEFT part names and their kohya equivalents. */
const PEFT_PARTS: ReadonlyArray<[string, string]> = [
  ['.lora_A.weight', 'lora_down.weight'],
  ['.lora_B.weight', 'lora_up.weight'],
  ['.lora.down.weight', 'lora_down.weight'],
  ['.lora.up.weight', 'lora_up.weight'],
  ['.lora_linear_layer.down.weight', 'lora_down.weight'],
  ['.lora_linear_layer.up.weight', 'lora_up.weight'],
  ['.alpha', 'alpha'],
];

const PEFT_PREFIXES: ReadonlyArray<[string, LoraPrefix]> = [
  ['unet.', 'lora_unet_'],
  ['text_encoder.', 'lora_te_'],
  ['text_encoder_2.', 'lora_te2_'],
];

/** diffusers' attention-processor LoRA layers: `attn1.processor.to_q_lora` is `attn1.to_q`'s. */
const PROCESSOR_LAYERS: Readonly<Record<string, string>> = { to_q_lora: 'to_q', to_k_lora: 'to_k', to_v_lora: 'to_v', to_out_lora: 'to_out.0' };

export function kohyaName(prefix: LoraPrefix, modulePath: string): string {
  return prefix + modulePath.replace(/\./g, '_');
}

/** The kohya module and part a file's key names, or undefined for a key of no known format. */
export function parseLoraKey(key: string): LoraKey | undefined {
  const bare = key.startsWith('base_model.model.') ? key.slice('base_model.model.'.length) : key;
  for (const [from, to] of PEFT_PREFIXES) {
    if (!bare.startsWith(from)) continue;
    const prefix = to;
    const processor = /^(.*)\.processor\.(to_[qkv]_lora|to_out_lora)\.(down|up)\.weight$/.exec(bare.slice(from.length));
    if (processor) return { module: kohyaName(prefix, `${processor[1]}.${PROCESSOR_LAYERS[processor[2]!]}`), part: `lora_${processor[3]}.weight` };
    const suffix = PEFT_PARTS.find(([s]) => bare.endsWith(s));
    if (!suffix) return undefined;
    return { module: kohyaName(prefix, bare.slice(from.length, bare.length - suffix[0].length)), part: suffix[1] };
  }
  // kohya, LyCORIS: the module name up to the first dot, then the part (A1111's split).
  const dot = key.indexOf('.');
  if (dot <= 0 || !/^lora_(unet|te\d?)_/.test(key)) return undefined;
  const module = key.slice(0, dot);
  return { module: module.startsWith('lora_te1_') ? `lora_te_${module.slice('lora_te1_'.length)}` : module, part: key.slice(dot + 1) };
}

/** Keys of LoRAs for SDXL's second text encoder or written for SDXL's module names. */
export function isSdxlKey(key: string): boolean {
  return /^lora_te[12]_/.test(key) || key.startsWith('text_encoder_2.');
}

/**
 * How a UNet's diffusers blocks sit in CompVis (LDM/SGM) numbering: resnets per down block
 * (layers_per_block; an up block has one more) and which up blocks have attentions (their
 * upsampler is the third module of the LDM block, not the second). SD 1.x/2.x: 2 and up blocks
 * 1–3; SDXL: 2 and up blocks 0–1.
 */
export interface UnetLayout {
  layersPerBlock: number;
  attentionUpBlocks: ReadonlySet<number>;
}

export const SD_UNET_LAYOUT: UnetLayout = { layersPerBlock: 2, attentionUpBlocks: new Set([1, 2, 3]) };

/**
 * A1111's and kohya's names for UNet modules in CompVis (LDM) spelling: SD LoRAs are sometimes
 * saved under `lora_unet_input_blocks_1_1_proj_in` instead of diffusers'
 * `lora_unet_down_blocks_0_attentions_0_proj_in`, and kohya's SDXL LoRAs always are (sd-scripts
 * trains SGM's UNet). This is A1111's convert_diffusers_name_to_compvis for SD 1.x/2.x, and for any
 * layout the inverse of diffusers' _maybe_map_sgm_blocks_to_diffusers (input block 1 + (lpb + 1)·level
 * + i, output block (lpb + 1)·level + i) with _convert_unet_lora_key's resnet parts, run forwards on
 * the model's own module names.
 */
export function compvisAlias(kohya: string, layout: UnetLayout = SD_UNET_LAYOUT): string | undefined {
  const RESNET_PARTS: Record<string, string> = { conv1: 'in_layers_2', conv2: 'out_layers_3', time_emb_proj: 'emb_layers_1', conv_shortcut: 'skip_connection' };
  const resnetPart = (kind: string, rest: string) => (kind === 'resnets' ? (RESNET_PARTS[rest] ?? rest) : rest);
  const perLevel = layout.layersPerBlock + 1;
  let m: RegExpMatchArray | null;
  if ((m = kohya.match(/^lora_unet_conv_in(.*)$/))) return `lora_unet_input_blocks_0_0${m[1]}`;
  if ((m = kohya.match(/^lora_unet_conv_out(.*)$/))) return `lora_unet_out_2${m[1]}`;
  if ((m = kohya.match(/^lora_unet_time_embedding_linear_(\d+)(.*)$/))) return `lora_unet_time_embed_${Number(m[1]) * 2 - 2}${m[2]}`;
  // SDXL's pooled-text and size embedding (diffusers' add_embedding, SGM's label_emb.0).
  if ((m = kohya.match(/^lora_unet_add_embedding_linear_(\d+)(.*)$/))) return `lora_unet_label_emb_0_${Number(m[1]) * 2 - 2}${m[2]}`;
  if ((m = kohya.match(/^lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)$/))) {
    return `lora_unet_input_blocks_${1 + Number(m[1]) * perLevel + Number(m[3])}_${m[2] === 'attentions' ? 1 : 0}_${resnetPart(m[2]!, m[4]!)}`;
  }
  if ((m = kohya.match(/^lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)$/))) {
    return `lora_unet_middle_block_${m[1] === 'attentions' ? 1 : Number(m[2]) * 2}_${resnetPart(m[1]!, m[3]!)}`;
  }
  if ((m = kohya.match(/^lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)$/))) {
    return `lora_unet_output_blocks_${Number(m[1]) * perLevel + Number(m[3])}_${m[2] === 'attentions' ? 1 : 0}_${resnetPart(m[2]!, m[4]!)}`;
  }
  if ((m = kohya.match(/^lora_unet_down_blocks_(\d+)_downsamplers_0_conv$/))) return `lora_unet_input_blocks_${(Number(m[1]) + 1) * perLevel}_0_op`;
  if ((m = kohya.match(/^lora_unet_up_blocks_(\d+)_upsamplers_0_conv$/))) {
    const block = Number(m[1]);
    return `lora_unet_output_blocks_${block * perLevel + layout.layersPerBlock}_${layout.attentionUpBlocks.has(block) ? 2 : 1}_conv`;
  }
  return undefined;
}
