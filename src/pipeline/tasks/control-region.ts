import { crop, type Box } from '../../image/composite.js';
import type { Raster } from '../../image/raster.js';
import { fitToSize, type ResizeMode } from '../../image/resize-modes.js';
import type { ControlUnit } from '../types.js';

type Size = { width: number; height: number };

/**
 * The units of an "only masked" inpaint, as sd-webui-controlnet 1.1.455 prepares them
 * (try_crop_image_with_a1111_mask, on by default for every unit but the reference ones): each
 * picture fitted to the whole init picture by the unit's resize mode, cut to the painted region
 * (A1111's crop region, the box the pass paints) and brought to the painted size by "resize and
 * fill" whatever the unit's mode, so the loop reads it as it is. A unit already cut (`inRegion`:
 * the CLI cuts the picture before its preprocessor, where the extension cuts it) is left as it is.
 */
export function unitsInRegion(units: readonly ControlUnit[] | undefined, whole: Size, region: Box, painted: Size): ControlUnit[] | undefined {
  return units?.map((unit) => (unit.inRegion ? unit : { ...unit, image: pictureInRegion(unit.image, unit.resizeMode, whole, region, painted), inRegion: true }));
}

/** One unit's picture cut to an "only masked" region (see unitsInRegion). */
export function pictureInRegion(picture: Raster, mode: ResizeMode | undefined, whole: Size, region: Box, painted: Size): Raster {
  const fitted = fitToSize(picture, whole.width, whole.height, mode ?? 'just-resize');
  return fitToSize(crop(fitted, region), painted.width, painted.height, 'resize-and-fill');
}

/**
 * An outpaint's units: each picture fitted once to the final canvas by its resize mode (the
 * extension fits a unit to the whole canvas it paints); a pass whose canvas is a window of that
 * canvas (the margins still to grow cut off) reads the same window of every picture.
 */
export function unitsOnCanvas(units: readonly ControlUnit[] | undefined, canvas: Size): { window(box: Box): ControlUnit[] | undefined } {
  const fitted = units?.map((unit) => ({ ...unit, image: fitToSize(unit.image, canvas.width, canvas.height, unit.resizeMode ?? 'just-resize') }));
  return { window: (box) => fitted?.map((unit) => ({ ...unit, image: crop(unit.image, box) })) };
}
