import { Keys } from './detect.js';
import { CheckpointError } from './errors.js';
import { LDM_PREFIX, vaeLocator, type Locator } from './ldm-keys.js';
import type { VaeConfig } from './model-config.js';
import { DIFFUSERS_LAYOUT, ORIGINAL_LAYOUT, readTinyPlan, tinyLocator, type TinyLayout, type TinyPlan, type TinySide } from './taesd.js';
import type { TensorStore } from './weights.js';

/**
 * What a VAE weight file holds, read off its keys and shapes:
 * - an AutoencoderKL (SD's VAE) in the LDM layout A1111's VAE files use (vae-ft-mse-840000-ema-pruned,
 *   kl-f8-anime2, sdxl_vae: `encoder.down.0.block.0...`, bare or under `first_stage_model.` as in
 *   a whole checkpoint), or in diffusers' layout (`encoder.down_blocks.0.resnets.0...`), whose mid
 *   attention older files still name query/key/value/proj_attn (diffusers renames them on load);
 * - TAESD: diffusers' AutoencoderTiny (`decoder.layers.N`, `encoder.layers.N`) or one of the
 *   original taesd_decoder / taesd_encoder files (bare indices).
 * Widths, depths and channels come from the shapes; SD's VAE normalises in 32 groups.
 */

export type DetectedVae =
  | { kind: 'kl'; config: Omit<VaeConfig, 'scalingFactor' | 'sampleSize'>; locate: Locator; hasEncoder: boolean }
  | { kind: 'taesd'; sides: Partial<Record<TinySide, { plan: TinyPlan; locate: Locator }>> };

const LEGACY_ATTENTION: Readonly<Record<string, string>> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };

/** diffusers' names, falling back to the deprecated attention names where the file has those. */
function diffusersLocator(keys: Keys): Locator {
  return (name) => {
    if (keys.has(name)) return { key: name };
    const m = /^(.*\.mid_block\.attentions\.0\.)(to_q|to_k|to_v|to_out\.0)(\..+)$/.exec(name);
    return { key: m ? `${m[1]}${LEGACY_ATTENTION[m[2]!]}${m[3]}` : name };
  };
}

function klConfig(keys: Keys, prefix: string, diffusers: boolean): Omit<VaeConfig, 'scalingFactor' | 'sampleSize'> {
  const up = diffusers ? `${prefix}decoder.up_blocks.` : `${prefix}decoder.up.`;
  const levels = keys.indices(up).length;
  if (levels < 1) throw new CheckpointError(`${keys.store.label}: the VAE decoder has no up blocks; the file is incomplete`);
  // The decoder's blocks run from the lowest resolution in diffusers' numbering, from the highest in LDM's.
  const width = (level: number): number => {
    const block = diffusers ? `${up}${levels - 1 - level}.resnets.0.conv2.weight` : `${up}${level}.block.0.conv2.weight`;
    return keys.shape(block)[0]!;
  };
  const resnets = keys.indices(diffusers ? `${up}0.resnets.` : `${up}0.block.`).length;
  return {
    inChannels: keys.has(`${prefix}encoder.conv_in.weight`) ? keys.shape(`${prefix}encoder.conv_in.weight`)[1]! : 3,
    outChannels: keys.shape(`${prefix}decoder.conv_out.weight`)[0]!,
    blockOutChannels: Array.from({ length: levels }, (_, l) => width(l)),
    layersPerBlock: resnets - 1,
    latentChannels: keys.shape(`${prefix}decoder.conv_in.weight`)[1]!,
    normGroups: 32,
  };
}

function tiny(keys: Keys, layouts: Partial<Record<TinySide, TinyLayout>>): DetectedVae {
  const sides: Extract<DetectedVae, { kind: 'taesd' }>['sides'] = {};
  for (const side of ['decoder', 'encoder'] as const) {
    const layout = layouts[side];
    if (layout) sides[side] = { plan: readTinyPlan(keys, side, layout), locate: tinyLocator(side, layout) };
  }
  return { kind: 'taesd', sides };
}

export function detectVae(store: TensorStore): DetectedVae {
  const keys = new Keys(store);
  if (keys.some('decoder.layers.') || keys.some('encoder.layers.')) {
    return tiny(keys, { ...(keys.some('decoder.layers.') ? { decoder: DIFFUSERS_LAYOUT.decoder } : {}), ...(keys.some('encoder.layers.') ? { encoder: DIFFUSERS_LAYOUT.encoder } : {}) });
  }
  // The original files: the encoder's Sequential starts with a convolution, the decoder's with the clamp.
  if (keys.has('0.weight')) return tiny(keys, { encoder: ORIGINAL_LAYOUT.encoder });
  if (keys.has('1.weight')) return tiny(keys, { decoder: ORIGINAL_LAYOUT.decoder });
  for (const prefix of ['', LDM_PREFIX.vae]) {
    if (keys.has(`${prefix}decoder.conv_in.weight`) && keys.some(`${prefix}decoder.up.`)) {
      const config = klConfig(keys, prefix, false);
      return { kind: 'kl', config, locate: vaeLocator(config.blockOutChannels.length, prefix), hasEncoder: keys.some(`${prefix}encoder.`) };
    }
  }
  if (keys.has('decoder.conv_in.weight') && keys.some('decoder.up_blocks.')) {
    return { kind: 'kl', config: klConfig(keys, '', true), locate: diffusersLocator(keys), hasEncoder: keys.some('encoder.') };
  }
  throw new CheckpointError(
    `${store.label}: no VAE found (neither SD's VAE, bare or under first_stage_model., in the LDM or diffusers layout, nor TAESD); pass a VAE file such as vae-ft-mse-840000-ema-pruned.safetensors or taesd_decoder.safetensors`,
  );
}
