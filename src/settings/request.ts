import { UsageError } from '../errors.js';
import { createHash } from 'node:crypto';
import { readImageFile, type LoadedImageFile } from '../image/load-image.js';
import { invertMask, luminance } from '../image/mask.js';
import type { Raster } from '../image/raster.js';
import { fitToSize } from '../image/resize-modes.js';
import { hasDepthEstimator, type ModelFiles } from '../pipeline/model-files.js';
import type { GenerationRequest, SdUpscale } from '../pipeline/types.js';
import type { GeneratingCommand, Settings } from './options.js';

/** What a subcommand's files add to its requests: the picture, the mask, the depth map, read once. */
export interface ImageTask {
  fields: Pick<GenerationRequest, 'init' | 'mask' | 'outpaint' | 'depth' | 'sdUpscale'>;
  width: number;
  height: number;
  /** The model must load its depth estimator (depth2img without --depth-map). */
  depthEstimator: boolean;
  /** Things the user should know (a mask resized to the picture). */
  notes: string[];
}

/**
 * The files of img2img, inpaint, outpaint and depth2img turned into request fields, before the
 * model loads: each file is read once, fitted to the size the request paints, and hashed for
 * the metadata. txt2img has none.
 */
export async function readImageTask(command: GeneratingCommand, settings: Settings, files: ModelFiles): Promise<ImageTask | undefined> {
  if (command === 'txt2img') return undefined;
  if (!settings.initImage) throw new UsageError(`missing --init-image <path>: the picture to ${command === 'outpaint' ? 'extend' : 'start from'}`);
  const path = settings.initImage;
  const loaded = await readImageFile(path, '--init-image');
  const hash = shortHash(loaded.bytes);
  const native = files.sampleSize * files.vaeScaleFactor;
  const init = { strength: settings.strength, strengthMode: settings.strengthMode, latents: settings.vaeLatents };
  if (command === 'outpaint') {
    if (!settings.extend) throw new UsageError('missing --extend: e.g. --extend 128, or --extend left=128,right=128,top=0,bottom=256');
    const ext = settings.extend;
    const { width, height } = flooredSize(loaded.rgb);
    const image = width === loaded.rgb.width && height === loaded.rgb.height ? loaded.rgb : fitToSize(loaded.rgb, width, height, 'just-resize');
    const outpaint = { extend: ext, fill: settings.fill, overlap: settings.overlap, blur: settings.maskBlur, ...(settings.passSize ? { passSize: settings.passSize } : {}) };
    return { fields: { init: { ...init, image, source: { hash } }, outpaint }, width: width + ext.left + ext.right, height: height + ext.top + ext.bottom, depthEstimator: false, notes: [] };
  }
  if (settings.sdUpscale !== undefined) {
    // A1111's script takes the picture as loaded (p.init_images[0]); --width/--height size the tiles.
    const sdUpscale = { scale: settings.sdUpscale, overlap: settings.sdUpscaleOverlap, upscaler: sdUpscalerChoice(settings.sdUpscaleUpscaler) };
    const tile = { width: settings.width ?? native, height: settings.height ?? native };
    return { fields: { init: { ...init, image: loaded.rgb, source: { hash } }, sdUpscale }, ...tile, depthEstimator: false, notes: [] };
  }
  const masked = command === 'inpaint' && settings.inpaintArea === 'masked';
  // With --inpaint-area masked, --width/--height size the crop that is painted, not the picture.
  const picture = masked ? flooredSize(loaded.rgb) : pictureSize(settings, loaded.rgb);
  const image = fitToSize(loaded.rgb, picture.width, picture.height, settings.resizeMode);
  const fields: ImageTask['fields'] = { init: { ...init, image, source: { hash, resizeMode: settings.resizeMode } } };
  const paints = masked ? { width: settings.width ?? native, height: settings.height ?? native } : picture;
  const notes: string[] = [];
  if (command === 'inpaint') fields.mask = await readMask(settings, loaded, picture, notes);
  let depthEstimator = false;
  if (command === 'depth2img') {
    if (settings.depthMap) {
      const depth = await readImageFile(settings.depthMap, '--depth-map');
      fields.depth = { values: luminance(depth.rgb), width: depth.rgb.width, height: depth.rgb.height, hash: shortHash(depth.bytes) };
    } else if (hasDepthEstimator(files.dir)) {
      depthEstimator = true;
    } else {
      throw new UsageError('missing --depth-map <path> (a grey picture, white = near): this model has no depth_estimator/ to estimate one');
    }
  }
  return { fields, ...paints, depthEstimator, notes };
}

const BUILTIN_UPSCALERS = ['lanczos', 'nearest', 'none'] as const;

/** A1111's built-in upscalers by name; anything else names an upscaler model, which the command resolves and loads (LoadOptions.upscaler). */
export function sdUpscalerChoice(ref: string): SdUpscale['upscaler'] {
  const builtin = BUILTIN_UPSCALERS.find((b) => b === ref.toLowerCase());
  return builtin ? { kind: builtin } : { kind: 'model', name: ref };
}

/** The repaint mask at the picture's size: a file (white repaints), or the init image's transparency. */
async function readMask(settings: Settings, init: LoadedImageFile, size: { width: number; height: number }, notes: string[]): Promise<NonNullable<GenerationRequest['mask']>> {
  const handling = {
    invert: settings.invertMask,
    blur: settings.maskBlur,
    overlay: 'mask' as const,
    content: settings.maskedContent,
    area: settings.inpaintArea,
    padding: settings.maskedPadding,
  };
  if (settings.maskFromAlpha) {
    if (!init.alpha) throw new UsageError('--mask-from-alpha: the init image has no alpha channel; pass --mask <path>');
    // Transparent pixels are the ones to paint.
    const alpha = fitToSize(init.alpha, size.width, size.height, settings.resizeMode);
    return { ...handling, values: invertMask(luminance(alpha)), source: 'alpha' };
  }
  if (!settings.mask) throw new UsageError('missing --mask <path> (white repaints, black keeps), or --mask-from-alpha');
  const file = await readImageFile(settings.mask, '--mask');
  const mask = file.rgb;
  const aspect = (r: Raster) => r.width / r.height;
  if (Math.abs(aspect(mask) - aspect(init.rgb)) > 0.01) {
    throw new UsageError(`--mask is ${mask.width}x${mask.height} but the init image is ${init.rgb.width}x${init.rgb.height}: their aspect ratios differ`);
  }
  if (mask.width !== size.width || mask.height !== size.height) notes.push(`the mask is ${mask.width}x${mask.height}; resized to ${size.width}x${size.height}`);
  return { ...handling, values: luminance(fitToSize(mask, size.width, size.height, settings.resizeMode)), source: { hash: shortHash(file.bytes) } };
}

/** The picture's size floored to multiples of 8, unless --width/--height say otherwise. */
function pictureSize(settings: Settings, image: Raster): { width: number; height: number } {
  const floored = flooredSize(image);
  return { width: settings.width ?? floored.width, height: settings.height ?? floored.height };
}

function flooredSize(image: Raster): { width: number; height: number } {
  const width = Math.floor(image.width / 8) * 8;
  const height = Math.floor(image.height / 8) * 8;
  if (width < 8 || height < 8) throw new UsageError(`the init image is ${image.width}x${image.height}; it must be at least 8x8`);
  return { width, height };
}

/** The first 10 hex digits of the file's SHA-256, as A1111 records init images and masks. */
export const shortHash = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex').slice(0, 10);
