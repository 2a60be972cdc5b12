import { readImageFile } from '../image/load-image.js';
import { canny } from '../image/preprocess/canny.js';
import { invert } from '../image/preprocess/invert.js';
import { threshold } from '../image/preprocess/threshold.js';
import type { Raster } from '../image/raster.js';
import { controlNetGraph } from '../pipeline/controlnet.js';
import type { ControlUnit } from '../pipeline/types.js';
import type { ControlSpec } from './control-spec.js';

/**
 * --control values turned into the request's units, before any model loads: each ControlNet
 * folder checked, each picture read once and run through its preprocessor (on the picture as it is; the pipeline then fits the result to the painted size).
 */
export async function readControlUnits(specs: readonly ControlSpec[]): Promise<ControlUnit[]> {
  return Promise.all(
    specs.map(async (spec, i): Promise<ControlUnit> => {
      controlNetGraph(spec.model);
      const picture = (await readImageFile(spec.image, `--control${specs.length > 1 ? ` #${i + 1}` : ''} image`)).rgb;
      return {
        model: spec.model,
        image: preprocessed(spec, picture),
        weight: spec.weight,
        start: spec.start,
        end: spec.end,
        guess: spec.guess,
        resizeMode: spec.resize,
        preprocessor: preprocessorRecord(spec),
      };
    }),
  );
}

function preprocessed(spec: ControlSpec, picture: Raster): Raster {
  switch (spec.type) {
    case 'canny':
      return canny(picture, spec.low, spec.high);
    case 'threshold':
      return threshold(picture, spec.level);
    case 'invert':
      return invert(picture);
    case 'none':
      return picture;
  }
}

/** A1111's "Module" and its slider values ("Threshold A/B"): canny's thresholds, threshold's level. */
function preprocessorRecord(spec: ControlSpec): NonNullable<ControlUnit['preprocessor']> {
  if (spec.type === 'canny') return { module: 'canny', thresholdA: spec.low, thresholdB: spec.high };
  if (spec.type === 'threshold') return { module: 'threshold', thresholdA: spec.level };
  return { module: spec.type };
}
