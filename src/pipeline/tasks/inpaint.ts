import { applyOverlay, crop, cropPlane, matchAspect, maskBox, type Box } from '../../image/composite.js';
import { fillMasked } from '../../image/mask-fill.js';
import { featherMask, invertMask, maskBytes } from '../../image/mask.js';
import type { Raster } from '../../image/raster.js';
import { fitToSize } from '../../image/resize-modes.js';
import type { GenerationRequest, InitImage, InpaintMask, PassRequest } from '../types.js';
import { unitsInRegion } from './control-region.js';

type Size = { width: number; height: number };

/** A1111's "Only masked padding" default: context kept around the mask's bounding box. */
export const DEFAULT_MASKED_PADDING = 32;

/** A pass and what turns its picture into the result (pasting a painted crop back into the whole). */
export interface PlannedPass {
  pass: PassRequest;
  finish?: (painted: Raster) => Raster;
}

/**
 * Inpainting as A1111 runs it around the one denoising loop: the mask inverted and feathered as
 * asked, the masked area pre-filled or left to latent noise, and either the whole picture painted
 * at the request's size or (area 'masked') a crop around the mask (picture and mask brought to that
 * size by "resize and fill", as A1111's StableDiffusionProcessingImg2Img.init does) painted and pasted
 * back, the ControlNet units' pictures cut to the same crop. The painted picture is finished by
 * A1111's overlay of the picture as it was (not pre-filled), through the feathered mask: doubled
 * (clipped at 255) for the whole picture, as it is for a crop. The request is checked (check-request.ts).
 */
export async function inpaintPass(request: GenerationRequest, init: InitImage, mask: InpaintMask): Promise<PlannedPass> {
  const { width: w, height: h } = init.image;
  const values = mask.invert ? invertMask(mask.values) : mask.values;
  const blurred = featherMask(values, w, h, mask.blur ?? 0);
  const whole = (mask.area ?? 'whole') === 'whole';
  const overlay = mask.overlay === 'mask' ? overlayMask(blurred, whole) : mask.overlay && maskBytes(mask.overlay);
  const content = mask.content ?? 'original';
  const image = content === 'fill' ? fillMasked(init.image, values) : init.image;
  const passInit = { ...withoutSource(init), image, ...(content === 'latent-noise' || content === 'latent-nothing' ? { maskedContent: content } : {}) };
  const base = withoutTasks(request);
  if (whole) {
    return { pass: { ...base, init: passInit, mask: { values: blurred } }, ...(overlay ? { finish: (painted: Raster) => applyOverlay(init.image, painted, overlay) } : {}) };
  }
  const { width: pw, height: ph } = request;
  const box = regionOf(blurred, init.image, mask, request);
  const cropMask = resizePlane(cropPlane(blurred, w, box), box.x1 - box.x0, box.y1 - box.y0, pw, ph);
  const control = unitsInRegion(request.control, init.image, box, { width: pw, height: ph });
  return {
    pass: { ...base, ...(control ? { control } : {}), init: { ...passInit, image: fitToSize(crop(image, box), pw, ph, 'resize-and-fill') }, mask: { values: cropMask } },
    finish: (painted) => applyOverlay(init.image, painted, overlay ?? overlayMask(blurred, false), box),
  };
}

/** A1111's mask_for_overlay: the feathered mask in 8 bits, doubled for the whole picture so its inner half is all painted. */
function overlayMask(blurred: Float32Array, whole: boolean): Uint8Array {
  const bytes = maskBytes(blurred);
  return whole ? bytes.map((v) => Math.min(255, 2 * v)) : bytes;
}

/**
 * The picture's region an "only masked" inpaint paints (A1111's crop region): the inverted and
 * feathered mask's bounding box grown by the padding, then to the painted size's aspect.
 */
export function maskedRegion(whole: Size, mask: InpaintMask, painted: Size): Box {
  const values = mask.invert ? invertMask(mask.values) : mask.values;
  return regionOf(featherMask(values, whole.width, whole.height, mask.blur ?? 0), whole, mask, painted);
}

function regionOf(blurred: Float32Array, whole: Size, mask: InpaintMask, painted: Size): Box {
  const { width: w, height: h } = whole;
  return matchAspect(maskBox(blurred, w, h, mask.padding ?? DEFAULT_MASKED_PADDING)!, painted.width / painted.height, w, h);
}

/** The request as one pass: no task fields left. */
export function withoutTasks(request: GenerationRequest): PassRequest {
  const { init, mask: _mask, outpaint: _outpaint, watermark: _watermark, safetyCheck: _safetyCheck, hires: _hires, sdUpscale: _sdUpscale, ...rest } = request;
  return { ...rest, ...(init ? { init: withoutSource(init) } : {}) };
}

function withoutSource(init: InitImage): PassRequest['init'] & object {
  const { source: _source, ...rest } = init;
  return rest;
}

/** A [0, 1] plane resized like a picture (through an 8-bit raster, as PIL resizes an L-mode mask), by A1111's "resize and fill". */
function resizePlane(plane: Float32Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  const raster: Raster = { width, height, channels: 1, data: Uint8Array.from(plane, (v) => Math.round(v * 255)) };
  return Float32Array.from(fitToSize(raster, outWidth, outHeight, 'resize-and-fill').data, (v) => v / 255);
}
