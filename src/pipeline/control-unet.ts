import { existsSync } from 'node:fs';
import { readCheckpointRecord } from '../graphs/model-folder.js';
import { addControlResiduals } from '../onnx/control-residuals.js';
import { cachedModelEdit } from '../onnx/edited-model-cache.js';
import { ModelLoadError } from '../errors.js';
import { componentPath, readModelJson } from './model-files.js';

/**
 * The UNet graph a ControlNet can feed: a UNet diffuse built from a checkpoint (src/graphs/unet.ts;
 * its folder has checkpoint.json) and an SDXL export (optimum exports SDXL UNets without residual
 * inputs, and no ControlNet-ready SDXL export is published) take no residuals, so a copy that does
 * (src/onnx/control-residuals.ts) is made once and cached beside links to its weights, only when
 * ControlNets are loaded; plain runs keep the graph without them (no zero residuals to feed at every
 * step). SD 1.x/2.x exports are used as they are (the ONNX community publishes them with the
 * residual inputs; one without is refused with the units).
 */
export function controlReadyUnet(path: string, modelDir: string, cacheDir: string): string {
  const configPath = componentPath(modelDir, 'unet', 'config.json');
  const config = existsSync(configPath) ? readModelJson(configPath) : {};
  if (!readCheckpointRecord(modelDir) && config['addition_embed_type'] !== 'text_time') return path;
  const widths = config['block_out_channels'];
  const per = config['layers_per_block'];
  if (!Array.isArray(widths) || !widths.every((w) => typeof w === 'number') || typeof per !== 'number') {
    throw new ModelLoadError(`${configPath}: no block_out_channels and layers_per_block to place ControlNet residuals by`);
  }
  return cachedModelEdit({
    source: path,
    cacheDir,
    label: 'unet-control-residuals',
    editKey: { controlResiduals: 1, widths, per },
    edit: (model) => {
      const channels = residualChannels(widths as number[], per);
      return { model: addControlResiduals(model, channels), result: { residuals: channels.length } };
    },
  }).path;
}

/** Channels of SD's down residuals (conv_in's, then per level its resnets' and, but the last, its downsampler's), then the mid block's. */
export function residualChannels(widths: readonly number[], layersPerBlock: number): number[] {
  const downs = widths.flatMap((w, level) => [...new Array<number>(layersPerBlock).fill(w), ...(level < widths.length - 1 ? [w] : [])]);
  return [widths[0]!, ...downs, widths[widths.length - 1]!];
}
