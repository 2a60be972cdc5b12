// sd-webui-controlnet's Preprocessor Resolution (1.1.4xx scripts/utils.py and preprocessor/legacy/processor.py
// resize_image_with_pad): before a preprocessor runs, the picture is scaled by k = res / its shorter side
// (float64), each side to int(np.round(side · k)) (halves to even), with cv2.INTER_CUBIC when k > 1 and
// INTER_AREA otherwise; the preprocessor then pads that to multiples of 64 and crops its map back to it, as
// diffuse's preprocessors already do. The map keeps the scaled size; the unit's resize mode fits it to the
// painted size afterwards.

import { roundHalfEven } from '../../round-half-even.js';
import { cvResizeU8 } from '../cv-resize-u8.js';
import type { Raster } from '../raster.js';
import type { ResizeMode } from '../resize-modes.js';

/** The extension's slider range for Preprocessor Resolution. */
export const PROCESSOR_RES_MIN = 64;
export const PROCESSOR_RES_MAX = 2048;
/** The slider's default: what the extension records as "Processor Res" beside "Pixel Perfect: True" (the hidden slider, or the API's -1 made 512). */
export const PROCESSOR_RES_DEFAULT = 512;

/** The size resize_image_with_pad scales a width x height picture to at resolution `res`. */
export function processorResolutionSize(width: number, height: number, res: number): { width: number; height: number; k: number } {
  const k = res / Math.min(width, height);
  return { width: roundHalfEven(width * k), height: roundHalfEven(height * k), k };
}

/** The picture as a preprocessor sees it at Preprocessor Resolution `res` (before its padding). */
export function atProcessorResolution(picture: Raster, res: number): Raster {
  const size = processorResolutionSize(picture.width, picture.height, res);
  return cvResizeU8(picture, size.width, size.height, size.k > 1 ? 'cubic' : 'area');
}

/**
 * The resolution sd-webui-controlnet's "Pixel Perfect" uses instead of the slider's (get_control ->
 * pixel_perfect_resolution): the scale that fits the picture to the painted size (aligned down to the latent grid, the
 * first pass's with a hires fix), the smaller of the two sides' for resize-and-fill and the larger otherwise, times the
 * picture's shorter side, rounded half to even. Not clamped to the slider's range, as the extension does not.
 */
export function pixelPerfectResolution(picture: { width: number; height: number }, painted: { width: number; height: number }, resize: ResizeMode): number {
  const k0 = Math.floor(painted.height / 8) * 8 / picture.height;
  const k1 = Math.floor(painted.width / 8) * 8 / picture.width;
  const k = resize === 'resize-and-fill' ? Math.min(k0, k1) : Math.max(k0, k1);
  return roundHalfEven(k * Math.min(picture.height, picture.width));
}
