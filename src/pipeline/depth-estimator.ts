import { readFileSync } from 'node:fs';
import { ModelLoadError } from '../errors.js';
import { roundHalfEven } from '../round-half-even.js';
import { floatTensor, toFloat32 } from '../onnx/dtype.js';
import { inputInfo, outputInfo, type OpenedSession } from '../onnx/session.js';
import { PIL_FILTER_NUMBERS, pilResize, type PilFilter } from '../image/pil-resample.js';
import type { Raster } from '../image/raster.js';
import { normalizedPlanes } from '../image/processor-pixels.js';
import type { DepthMap } from './types.js';

/**
 * The depth estimator a depth model ships (stabilityai/stable-diffusion-2-depth: DPT in
 * depth_estimator/, its DPTImageProcessor settings in feature_extractor/), run as diffusers'
 * StableDiffusionDepth2ImgPipeline does when no depth map is given: the picture resized and
 * normalised by the processor's rules, the model's predicted_depth taken as the map.
 */

export interface DepthProcessorConfig {
  height: number;
  width: number;
  keepAspectRatio: boolean;
  ensureMultipleOf: number;
  doResize: boolean;
  resample: PilFilter;
  rescale: number | undefined;
  mean: [number, number, number] | undefined;
  std: [number, number, number] | undefined;
}

type Json = Record<string, unknown>;
const num = (v: unknown, fallback: number): number => (typeof v === 'number' ? v : fallback);
const triple = (v: unknown, fallback: number): [number, number, number] =>
  Array.isArray(v) && v.length === 3 ? (v.map(Number) as [number, number, number]) : [fallback, fallback, fallback];


/**
 * preprocessor_config.json with transformers' DPTImageProcessor defaults for what it leaves out;
 * `size` as a number (the older DPTFeatureExtractor files) is a square.
 */
export function readProcessorConfig(path: string): DepthProcessorConfig {
  let raw: Json;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Json;
  } catch (err) {
    throw new ModelLoadError(`cannot read the depth estimator's settings ${path}: ${(err as Error).message}`, { cause: err });
  }
  const size = raw.size;
  const [height, width] =
    typeof size === 'number' ? [size, size] : size && typeof size === 'object' ? [num((size as Json).height, 384), num((size as Json).width, 384)] : [384, 384];
  const resample = PIL_FILTER_NUMBERS[num(raw.resample, 3)];
  if (!resample) throw new ModelLoadError(`${path}: resample ${String(raw.resample)} is not supported (use 1 lanczos, 2 bilinear or 3 bicubic)`);
  return {
    height,
    width,
    resample,
    keepAspectRatio: raw.keep_aspect_ratio === true,
    ensureMultipleOf: num(raw.ensure_multiple_of, 1),
    doResize: raw.do_resize !== false,
    rescale: raw.do_rescale === false ? undefined : num(raw.rescale_factor, 1 / 255),
    mean: raw.do_normalize === false ? undefined : triple(raw.image_mean, 0.5),
    std: raw.do_normalize === false ? undefined : triple(raw.image_std, 0.5),
  };
}

function multipleOf(value: number, multiple: number): number {
  return roundHalfEven(value / multiple) * multiple || Math.ceil(value / multiple) * multiple;
}

/** DPTImageProcessor's output size: the target, or (keep_aspect_ratio) the scale closer to 1 on both sides. */
export function processorSize(config: DepthProcessorConfig, width: number, height: number): { width: number; height: number } {
  let sh = config.height / height;
  let sw = config.width / width;
  if (config.keepAspectRatio) {
    if (Math.abs(1 - sw) < Math.abs(1 - sh)) sh = sw;
    else sw = sh;
  }
  return { width: multipleOf(sw * width, config.ensureMultipleOf), height: multipleOf(sh * height, config.ensureMultipleOf) };
}

/** pixel_values [1, 3, h, w]: resized on 8-bit samples (PIL bicubic), then rescaled and normalised. */
export function processorPixels(config: DepthProcessorConfig, image: Raster): { data: Float32Array; width: number; height: number } {
  const size = config.doResize ? processorSize(config, image.width, image.height) : { width: image.width, height: image.height };
  const resized = size.width === image.width && size.height === image.height ? image : pilResize(image, size.width, size.height, config.resample);
  const norm = config.mean && config.std ? { mean: config.mean, std: config.std } : undefined;
  return { data: normalizedPlanes(resized, config.rescale, norm), ...size };
}

export class DepthEstimator {
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly floatType: 'float32' | 'float16';

  constructor(
    private readonly opened: OpenedSession,
    private readonly config: DepthProcessorConfig,
  ) {
    const input = inputInfo(opened.session)[0];
    const output = outputInfo(opened.session).find((o) => o.name === 'predicted_depth') ?? outputInfo(opened.session)[0];
    if (!input || !output) throw new ModelLoadError('depth_estimator/model.onnx needs an image input and a depth output');
    this.inputName = input.name;
    this.outputName = output.name;
    this.floatType = input.type === 'float16' ? 'float16' : 'float32';
  }

  async estimate(image: Raster): Promise<DepthMap> {
    const pixels = processorPixels(this.config, image);
    const feeds = { [this.inputName]: floatTensor(this.floatType, pixels.data, [1, 3, pixels.height, pixels.width]) };
    const out = (await this.opened.session.run(feeds, [this.outputName]))[this.outputName]!;
    const dims = out.dims;
    return { values: toFloat32(out), height: dims[dims.length - 2]!, width: dims[dims.length - 1]! };
  }
}
