import { existsSync } from 'node:fs';
import { basename, relative } from 'node:path';
import sharp from 'sharp';
import { ModelLoadError, UsageError } from '../errors.js';
import { clipPixels, type ClipProcessorSettings } from '../image/clip-pixels.js';
import { PIL_FILTER_NUMBERS } from '../image/pil-resample.js';
import type { Raster } from '../image/raster.js';
import { floatTensor } from '../onnx/dtype.js';
import { inputInfo, outputInfo, type OpenedSession } from '../onnx/session.js';
import { CLIP_PROCESSOR_KEYS, checkConfigKeys } from './model-config-check.js';
import { componentPath, readModelJson } from './model-files.js';
import type { SafetyAction } from './types.js';

/**
 * The safety checker SD 1.x folders ship (safety_checker/ + feature_extractor/), run as diffusers'
 * pipelines run it: the finished 8-bit picture through CLIPImageProcessor, then the checker graph
 * (diffusers' StableDiffusionSafetyChecker.forward_onnx, as its ONNX conversion exports it: concept
 * and special-care thresholds inside the graph), one picture per call as OnnxStableDiffusionPipeline.
 */
export class SafetyChecker {
  private readonly floatType: 'float32' | 'float16';
  private readonly flagOutput: string;

  constructor(
    private readonly opened: OpenedSession,
    private readonly processor: ClipProcessorSettings,
  ) {
    const inputs = inputInfo(opened.session);
    const names = inputs.map((i) => i.name);
    if (!names.includes('clip_input') || !names.includes('images')) {
      throw new ModelLoadError(`safety_checker/model.onnx takes ${names.join(', ') || 'no inputs'}; a Stable Diffusion safety checker takes clip_input and images (diffusers' ONNX export)`);
    }
    const flag = outputInfo(opened.session).find((o) => o.name === 'has_nsfw_concepts') ?? outputInfo(opened.session)[1];
    if (!flag) throw new ModelLoadError('safety_checker/model.onnx has no has_nsfw_concepts output');
    this.flagOutput = flag.name;
    this.floatType = inputs.find((i) => i.name === 'clip_input')!.type === 'float16' ? 'float16' : 'float32';
  }

  /** Whether the checker flags this RGB picture. */
  async flags(image: Raster): Promise<boolean> {
    const pixels = clipPixels(this.processor, image);
    const picture = Float32Array.from(image.data, (v) => v / 255);
    const feeds = {
      clip_input: floatTensor(this.floatType, pixels.data, [1, 3, pixels.height, pixels.width]),
      images: floatTensor(this.floatType, picture, [1, image.height, image.width, image.channels]),
    };
    const out = (await this.opened.session.run(feeds, [this.flagOutput]))[this.flagOutput]!;
    return Boolean((out.data as ArrayLike<number | boolean>)[0]);
  }
}

/**
 * A flagged picture as --safety-action asks: black as diffusers returns it, or blurred past
 * recognition (a Gaussian of σ = 1/16 of the longer side, libvips' box approximation, so the time
 * does not grow with σ).
 */
export async function censor(image: Raster, action: SafetyAction): Promise<Raster> {
  if (action === 'black') return { ...image, data: new Uint8Array(image.data.length) };
  const sigma = Math.max(image.width, image.height) / 16;
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .blur({ sigma, precision: 'approximate' })
    .raw()
    .toBuffer();
  return { ...image, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** The checker's files in a model folder, or one line saying how to get them (models pull downloads them only when asked). */
export function safetyCheckerFiles(dir: string): { graph: string; processor: string } {
  const graph = componentPath(dir, 'safety_checker');
  const processor = componentPath(dir, 'feature_extractor', 'preprocessor_config.json');
  for (const path of [graph, processor]) {
    if (!existsSync(path)) {
      throw new UsageError(`--safety-checker: ${basename(dir)} has no ${relative(dir, path)}; 'diffuse models pull <id> --safety-checker' downloads the checker with a registry model, or use a folder that ships safety_checker/ and feature_extractor/`);
    }
  }
  return { graph, processor };
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/**
 * feature_extractor/preprocessor_config.json, in the legacy CLIPFeatureExtractor format (sizes as
 * numbers) or today's CLIPImageProcessor one, with CLIPImageProcessor's defaults for absent keys.
 */
export function readClipProcessor(path: string): ClipProcessorSettings {
  const raw = readModelJson(path);
  checkConfigKeys(path, raw, CLIP_PROCESSOR_KEYS);
  const size = raw.size ?? { shortest_edge: 224 };
  const crop = raw.crop_size ?? { height: 224, width: 224 };
  return {
    ...(raw.do_resize !== false ? { resize: sizeOf(size, true) } : {}),
    resample: PIL_FILTER_NUMBERS[typeof raw.resample === 'number' ? raw.resample : 3]!,
    ...(raw.do_center_crop !== false ? { crop: cropOf(path, crop) } : {}),
    rescale: raw.do_rescale === false ? undefined : typeof raw.rescale_factor === 'number' ? raw.rescale_factor : 1 / 255,
    norm: raw.do_normalize === false ? undefined : { mean: (raw.image_mean as number[] | undefined) ?? CLIP_MEAN, std: (raw.image_std as number[] | undefined) ?? CLIP_STD },
  };
}

function cropOf(path: string, value: unknown): { width: number; height: number } {
  const size = sizeOf(value, false);
  if ('shortestEdge' in size) throw new ModelLoadError(`${path}: crop_size must be a number or {"height": h, "width": w}, as transformers' center_crop takes it`);
  return size;
}

/** transformers' get_size_dict: a number is the shortest edge for `size`, a square for `crop_size`. */
function sizeOf(value: unknown, shortestEdge: boolean): { shortestEdge: number } | { width: number; height: number } {
  if (typeof value === 'number') return shortestEdge ? { shortestEdge: value } : { width: value, height: value };
  const o = value as Record<string, number>;
  return 'shortest_edge' in o ? { shortestEdge: o.shortest_edge! } : { width: o.width!, height: o.height! };
}
