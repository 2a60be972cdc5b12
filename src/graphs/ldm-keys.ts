import type { UnetConfig } from './model-config.js';
import type { WeightSource } from './weights.js';

/**
 * Where each diffusers/transformers parameter lives in an original (CompVis LDM) single-file
 * checkpoint, the layout A1111, ComfyUI and Civitai files use. The renaming is the inverse of
 * diffusers' single_file_utils converters (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
 * convert_ldm_clip_checkpoint, convert_open_clip_checkpoint); tools/ldm_keys.py writes the same
 * mapping in Python and checks it by a round trip through those converters.
 */

export type Locator = (name: string) => WeightSource | undefined;

export const LDM_PREFIX = {
  unet: 'model.diffusion_model.',
  vae: 'first_stage_model.',
  clip: 'cond_stage_model.transformer.',
  openClip: 'cond_stage_model.model.',
  // SDXL (SGM): the conditioner's embedders, CLIP ViT-L then OpenCLIP bigG (the refiner's only one is embedders.0.model).
  sdxlClip: 'conditioner.embedders.0.transformer.',
  sdxlOpenClip: 'conditioner.embedders.1.model.',
  sdxlRefinerOpenClip: 'conditioner.embedders.0.model.',
} as const;

/** diffusers ResnetBlock2D parameter names -> LDM ResBlock's. */
const UNET_RESNET: Readonly<Record<string, string>> = {
  norm1: 'in_layers.0',
  conv1: 'in_layers.2',
  norm2: 'out_layers.0',
  conv2: 'out_layers.3',
  time_emb_proj: 'emb_layers.1',
  conv_shortcut: 'skip_connection',
};

function renamed(rest: string, table: Readonly<Record<string, string>>): string | undefined {
  const dot = rest.indexOf('.');
  const head = table[rest.slice(0, dot)];
  return head === undefined ? undefined : head + rest.slice(dot);
}

/**
 * UNet: LDM numbers input blocks 1.. as (layers_per_block resnets [+ transformer], then a
 * downsampler) per level, output blocks 0.. as (layers_per_block + 1 resnets [+ transformer])
 * per level, the upsampler sitting after the last one's resnet (and transformer).
 */
export function unetLocator(config: Pick<UnetConfig, 'layersPerBlock' | 'upBlockTypes'>, prefix: string = LDM_PREFIX.unet): Locator {
  const per = config.layersPerBlock + 1;
  const fixed: Readonly<Record<string, string>> = {
    'conv_in.': 'input_blocks.0.0.',
    'time_embedding.linear_1.': 'time_embed.0.',
    'time_embedding.linear_2.': 'time_embed.2.',
    // SDXL's pooled-text and size embedding.
    'add_embedding.linear_1.': 'label_emb.0.0.',
    'add_embedding.linear_2.': 'label_emb.0.2.',
    'conv_norm_out.': 'out.0.',
    'conv_out.': 'out.2.',
    'mid_block.attentions.0.': 'middle_block.1.',
  };
  const rules: Array<[RegExp, (m: RegExpMatchArray) => string | undefined]> = [
    [/^down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => prefixed(`input_blocks.${Number(m[1]) * per + Number(m[2]) + 1}.0.`, renamed(m[3]!, UNET_RESNET))],
    [/^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/, (m) => `input_blocks.${Number(m[1]) * per + Number(m[2]) + 1}.1.${m[3]}`],
    [/^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/, (m) => `input_blocks.${(Number(m[1]) + 1) * per}.0.op.${m[2]}`],
    [/^mid_block\.resnets\.(\d+)\.(.+)$/, (m) => prefixed(`middle_block.${2 * Number(m[1])}.`, renamed(m[2]!, UNET_RESNET))],
    [/^up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => prefixed(`output_blocks.${Number(m[1]) * per + Number(m[2])}.0.`, renamed(m[3]!, UNET_RESNET))],
    [/^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$/, (m) => `output_blocks.${Number(m[1]) * per + Number(m[2])}.1.${m[3]}`],
    [
      /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)$/,
      (m) => `output_blocks.${Number(m[1]) * per + per - 1}.${config.upBlockTypes[Number(m[1])] === 'CrossAttnUpBlock2D' ? 2 : 1}.conv.${m[2]}`,
    ],
  ];
  return (name) => {
    const key = fixedKey(name, fixed) ?? firstRule(name, rules);
    return key === undefined ? undefined : { key: prefix + key };
  };
}

function prefixed(head: string, rest: string | undefined): string | undefined {
  return rest === undefined ? undefined : head + rest;
}

function fixedKey(name: string, table: Readonly<Record<string, string>>): string | undefined {
  const hit = Object.keys(table).find((k) => name.startsWith(k));
  return hit === undefined ? undefined : table[hit] + name.slice(hit.length);
}

function firstRule(name: string, rules: ReadonlyArray<[RegExp, (m: RegExpMatchArray) => string | undefined]>): string | undefined {
  for (const [pattern, key] of rules) {
    const m = name.match(pattern);
    if (m) return key(m);
  }
  return undefined;
}

const VAE_RESNET: Readonly<Record<string, string>> = { norm1: 'norm1', conv1: 'conv1', norm2: 'norm2', conv2: 'conv2', conv_shortcut: 'nin_shortcut' };
const VAE_ATTENTION: Readonly<Record<string, string>> = { group_norm: 'norm', to_q: 'q', to_k: 'k', to_v: 'v', 'to_out.0': 'proj_out' };

/**
 * VAE: the decoder's up blocks are numbered from the lowest resolution in diffusers and from the
 * highest in LDM; the mid attention's projections are 1x1 convolutions there (the `linear`
 * layout reads both).
 */
export function vaeLocator(levels: number, prefix: string = LDM_PREFIX.vae): Locator {
  const rules: Array<[RegExp, (m: RegExpMatchArray) => string | undefined]> = [
    [/^(quant_conv|post_quant_conv)\.(.+)$/, (m) => `${m[1]}.${m[2]}`],
    [/^(encoder|decoder)\.conv_norm_out\.(.+)$/, (m) => `${m[1]}.norm_out.${m[2]}`],
    [/^(encoder|decoder)\.(conv_in|conv_out)\.(.+)$/, (m) => `${m[1]}.${m[2]}.${m[3]}`],
    [/^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => prefixed(`encoder.down.${m[1]}.block.${m[2]}.`, renamed(m[3]!, VAE_RESNET))],
    [/^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/, (m) => `encoder.down.${m[1]}.downsample.conv.${m[2]}`],
    [/^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$/, (m) => prefixed(`decoder.up.${levels - 1 - Number(m[1])}.block.${m[2]}.`, renamed(m[3]!, VAE_RESNET))],
    [/^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)$/, (m) => `decoder.up.${levels - 1 - Number(m[1])}.upsample.conv.${m[2]}`],
    [/^(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)$/, (m) => prefixed(`${m[1]}.mid.block_${Number(m[2]) + 1}.`, renamed(m[3]!, VAE_RESNET))],
    [/^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.+)$/, (m) => `${m[1]}.mid.attn_1.${VAE_ATTENTION[m[2]!]}.${m[3]}`],
  ];
  return (name) => {
    const key = firstRule(name, rules);
    return key === undefined ? undefined : { key: prefix + key };
  };
}

/** SD 1.x's CLIP text model is stored under its transformers names (older files without `text_model.`). */
export function clipLocator(prefix: string, hasTextModel: boolean): Locator {
  return (name) => ({ key: prefix + (hasTextModel ? name : name.replace(/^text_model\./, '')) });
}

/**
 * SD 2.x's and SDXL's OpenCLIP text tower: q, k and v are thirds of one packed in_proj, the MLP
 * is c_fc/c_proj, the layer norms ln_1/ln_2/ln_final, and SDXL's text_projection is stored
 * [width, projection] (x @ P), the transpose of transformers' Linear.
 */
export function openClipLocator(hidden: number, prefix: string = LDM_PREFIX.openClip): Locator {
  const rules: Array<[RegExp, (m: RegExpMatchArray) => WeightSource | undefined]> = [
    [/^text_model\.embeddings\.token_embedding\.weight$/, () => ({ key: 'token_embedding.weight' })],
    [/^text_projection\.weight$/, () => ({ key: 'text_projection', transposed: true })],
    [/^text_model\.embeddings\.position_embedding\.weight$/, () => ({ key: 'positional_embedding' })],
    [/^text_model\.final_layer_norm\.(.+)$/, (m) => ({ key: `ln_final.${m[1]}` })],
    [/^text_model\.encoder\.layers\.(\d+)\.layer_norm([12])\.(.+)$/, (m) => ({ key: `transformer.resblocks.${m[1]}.ln_${m[2]}.${m[3]}` })],
    [
      /^text_model\.encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)$/,
      (m) => {
        const third = 'qkv'.indexOf(m[2]!);
        return { key: `transformer.resblocks.${m[1]}.attn.in_proj_${m[3]}`, rows: [third * hidden, (third + 1) * hidden] };
      },
    ],
    [/^text_model\.encoder\.layers\.(\d+)\.self_attn\.out_proj\.(.+)$/, (m) => ({ key: `transformer.resblocks.${m[1]}.attn.out_proj.${m[2]}` })],
    [/^text_model\.encoder\.layers\.(\d+)\.mlp\.fc([12])\.(.+)$/, (m) => ({ key: `transformer.resblocks.${m[1]}.mlp.${m[2] === '1' ? 'c_fc' : 'c_proj'}.${m[3]}` })],
  ];
  return (name) => {
    for (const [pattern, source] of rules) {
      const m = name.match(pattern);
      const found = m && source(m);
      if (found) return { ...found, key: prefix + found.key };
    }
    return undefined;
  };
}

/** A diffusers folder's files already use the names the builders ask for. */
export const sameNames: Locator = (name) => ({ key: name });
