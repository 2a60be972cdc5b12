import { UsageError } from '../errors.js';
import { WatermarkImageTooSmallError, watermarkFits } from '../image/watermark/dwt-dct.js';
import { promptLimitProblem } from '../text/prompt-limits.js';
import type { ModelFiles } from './model-files.js';
import { checkHires } from './tasks/hires.js';
import { sdUpscaleSize } from './tasks/sd-upscale.js';
import type { GenerationRequest } from './types.js';

/**
 * What can be wrong with a request before any model runs: sizes the VAE cannot make, task fields
 * that do not fit together or do not fit the picture. generate() checks every request; callers
 * that read files first (the CLI) check before loading the model, so a mistake costs nothing.
 */
export function checkRequest(files: Pick<ModelFiles, 'vaeScaleFactor'>, request: GenerationRequest): void {
  const ratio = files.vaeScaleFactor;
  for (const [text, label] of [[request.prompt, 'the prompt'], [request.negativePrompt ?? '', 'the negative prompt']] as const) {
    const problem = promptLimitProblem(text, label);
    if (problem) throw new UsageError(problem);
  }
  checkSize(request.width, request.height, ratio);
  const { init, mask, outpaint } = request;
  if (request.watermark) {
    // The finished image's size: the whole picture when a masked area is painted into it.
    const final = mask?.area === 'masked' && init ? init.image : request;
    if (!watermarkFits(final.width, final.height)) throw new WatermarkImageTooSmallError(final.width, final.height);
  }
  if (request.refinerSwitch !== undefined && !(request.refinerSwitch > 0 && request.refinerSwitch <= 1)) {
    throw new UsageError(`the refiner switch is the completed fraction of the schedule, above 0 and at most 1 (got ${request.refinerSwitch})`);
  }
  if (request.deepCache !== undefined && !(Number.isInteger(request.deepCache) && request.deepCache >= 1)) {
    throw new UsageError(`the DeepCache interval is a whole number of UNet calls, 1 or more (got ${request.deepCache})`);
  }
  if ((request.deepCache ?? 1) > 1 && request.control?.length) throw new UsageError('--deep-cache does not combine with ControlNet units yet: leave one of them out');
  checkHires(request, ratio);
  if ((mask || outpaint || request.depth) && !init) throw new UsageError('a mask, an outpaint extension or a depth map needs the picture it applies to (init)');
  if (!init) return;
  const { width: w, height: h } = init.image;
  if (outpaint) {
    const e = outpaint.extend;
    if (mask) throw new UsageError('outpaint makes its own mask: a request cannot have both');
    if (e.left + e.right + e.top + e.bottom === 0) throw new UsageError('outpaint: every side of the extension is 0, nothing to do');
    checkSize(w, h, ratio);
    if (w + e.left + e.right !== request.width || h + e.top + e.bottom !== request.height) {
      throw new UsageError(`outpaint: a ${w}x${h} picture grown by left ${e.left}, right ${e.right}, top ${e.top}, bottom ${e.bottom} is not the request's ${request.width}x${request.height}`);
    }
    return;
  }
  if (request.sdUpscale) {
    checkSdUpscale(request, w, h);
    return;
  }
  if (mask) {
    if (mask.values.length !== w * h) throw new UsageError(`the mask has ${mask.values.length} values; the picture is ${w}x${h}`);
    const repaints = mask.invert ? mask.values.some((v) => v < 0.5) : mask.values.some((v) => v >= 0.5);
    if (!repaints) throw new UsageError('the mask has no white (repaint) area: nothing to do (white repaints, black keeps; --invert-mask flips it)');
    if (mask.area === 'masked') return;
  }
  if (w !== request.width || h !== request.height) throw new UsageError(`the picture is ${w}x${h}; this request paints ${request.width}x${request.height} (resize it first)`);
}

/** Width and height the model's VAE can make: multiples of its latent ratio. */
export function checkSize(width: number, height: number, ratio: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < ratio || height < ratio || width % ratio !== 0 || height % ratio !== 0) {
    throw new UsageError(`width and height must be multiples of ${ratio} for this model (got ${width}x${height}; try ${roundTo(width, ratio)}x${roundTo(height, ratio)})`);
  }
}

const roundTo = (n: number, ratio: number): number => Math.max(ratio, Math.round(n / ratio) * ratio);

/** SD upscale: one image of plain img2img whose upscaled picture holds at least one whole tile. */
function checkSdUpscale(request: GenerationRequest, w: number, h: number): void {
  const sd = request.sdUpscale!;
  if (request.mask || request.depth || request.hires || request.control?.length) throw new UsageError('SD upscale repaints tiles with plain img2img: leave out the mask, depth map, hires fix and ControlNet units');
  if (request.batchSize !== 1) throw new UsageError('SD upscale paints one picture tile by tile: use --batch-count, not --batch-size');
  if (!(sd.scale > 0 && sd.scale <= 8)) throw new UsageError(`the SD upscale scale must be above 0 and at most 8 (got ${sd.scale})`);
  if (!(Number.isInteger(sd.overlap) && sd.overlap >= 0 && sd.overlap < Math.min(request.width, request.height) / 2)) {
    throw new UsageError(`the SD upscale overlap must be a whole number below half the ${request.width}x${request.height} tile (got ${sd.overlap})`);
  }
  const size = sdUpscaleSize({ width: w, height: h }, sd);
  if (size.width < request.width || size.height < request.height) {
    throw new UsageError(`SD upscale: the upscaled picture is ${size.width}x${size.height}, smaller than the ${request.width}x${request.height} tiles; raise the scale or lower --width/--height`);
  }
  if (size.width * size.height > MAX_SD_UPSCALE_PIXELS) {
    throw new UsageError(`SD upscale: the upscaled picture would be ${size.width}x${size.height}; at most ${MAX_SD_UPSCALE_PIXELS / 2 ** 20} megapixels are painted: lower the scale`);
  }
}

/** 8192x8192: the largest picture diffuse reads; tiles are painted one at a time, the picture kept at 8 bits. */
const MAX_SD_UPSCALE_PIXELS = 8192 * 8192;
