import { dirname } from 'node:path';
import { rmSync } from 'node:fs';
import { ModelLoadError } from '../errors.js';
import { cachedModelEdit, cachedModelEditAsync } from '../onnx/edited-model-cache.js';
import { QuantizationError, addRangeOutputs, quantizeInt8, rangeOutputNames, type Int8Format, type QuantizeOptions, type Range } from '../onnx/quantize-int8.js';
import { quantizeAttention } from '../onnx/quantize-attention.js';
import type { Int8Support } from '../onnx/cpu-features.js';
import type { OpenedSession } from '../onnx/session.js';
import type { ort } from '../onnx/runtime.js';
import { createRaster } from '../image/raster.js';
import type { GenerationRequest } from './types.js';

/**
 * int8: UNet and VAE decoder, convolutions calibrated; int8-matmul: the UNet's MatMuls only, no
 * calibration; int8-attention: int8 and the UNet's attention products too (its attention unfused).
 */
export const QUANTIZATIONS = ['none', 'int8', 'int8-matmul', 'int8-attention'] as const;
export type Quantization = (typeof QUANTIZATIONS)[number];

/**
 * Bumped whenever the quantizer or the calibration below changes, so int8 graphs cached by an
 * older version are rebuilt instead of reused.
 */
const INT8_VERSION = 1;

/** The int8 weights beside each int8 graph, so its later edits (projection split, DeepCache) link them instead of copying them. */
const INT8_DATA_FILE = 'int8.onnx_data';

/** A calibration graph: the model with range outputs, and the activations they measure. */
export interface CalibrationGraph {
  path: string;
  activations: string[];
}

export type Ranges = Map<string, Range>;

/**
 * Runs the real pipeline on the calibration graphs and returns the ranges each one saw
 * (see calibrationRequests and recordRanges).
 */
export type Calibrate = (graphs: { unet: CalibrationGraph; decoder: CalibrationGraph }) => Promise<{ unet: Ranges; decoder: Ranges }>;

/** A quantized model's settings: the mode asked for and the weight format this CPU runs exactly. */
export interface QuantizationChoice {
  mode: Exclude<Quantization, 'none'>;
  format: Int8Format;
}

/** How the int8 graphs are stored for this CPU (quantize-int8.ts): the same numbers either way. */
export type Int8Storage = Pick<QuantizeOptions, 'offsetConvWeights'>;

/**
 * With AMX and int8 weights, wide convolutions are stored for ONNX Runtime's GEMM path, which uses AMX's tiles.
 * Without AMX that path is slower than the symmetric VNNI kernels: the same convolutions as the AVX-512 VNNI class
 * (tools/cpu-class on the Xeon) took 1.11-1.40x the time at the UNet's 3x3 shapes and 2.27x at a 1x1 320 -> 320.
 */
export function int8Storage(support: Pick<Int8Support, 'amx'>, format: Int8Format): Int8Storage {
  return { offsetConvWeights: Boolean(support.amx) && format !== 'u8u8' };
}

/**
 * What `--quantize int8` runs on this CPU. On AVX-512 without VNNI ONNX Runtime's int8 convolutions (u8u8) are no
 * faster than its float ones (2.68 s against 2.70 s in a UNet call as the AVX-512 class), while the float UNet's
 * convolutions became faster with --conv auto's Winograd share: int8 then took 1.035x fp32's step and int8-matmul
 * 0.968x (bench/results/2026-12-07T2232-*-avx512.md). There int8 quantizes the UNet's MatMuls only, as int8-matmul,
 * so it is never slower than fp32.
 */
export function int8Mode(support: Pick<Int8Support, 'vnni' | 'avx512'>, mode: QuantizationChoice['mode']): QuantizationChoice['mode'] {
  return mode === 'int8' && support.vnni === false && support.avx512 === true ? 'int8-matmul' : mode;
}

/**
 * Whether `int8` also quantizes the VAE decoder on this CPU. Without VNNI (ONNX Runtime's widening u8u8 kernels) the
 * decoder's int8 graph is slower than its float one: at 512x512, 14.7 s against 14.3 s as the AVX2 class and 11.6 s
 * against 8.5 s as the AVX-512 class (tools/cpu-class on the Xeon, bench/results/2026-12-07T1924-*-avx2.md and
 * T1945-*-avx512.md), so there it stays float32: int8 should never be slower than fp32.
 */
export function quantizesDecoder(support: Pick<Int8Support, 'vnni'>): boolean {
  return support.vnni !== false;
}

/**
 * int8 copies of the UNet and (where quantizesDecoder) the VAE decoder, cached per source graph (its bytes and weights, as
 * every edited graph) and weight format. On a miss both are calibrated by one short run of the
 * pipeline on the float graphs with range outputs added, then quantized; the calibration graphs
 * are deleted. Calibration does not depend on the format.
 */
export async function int8Graphs(
  { mode, format, offsetConvWeights, decoder }: QuantizationChoice & Int8Storage & { decoder: boolean },
  paths: { unet: string; decoder: string },
  cacheDir: string,
  calibrate: Calibrate,
  onCalibrate: (what: string) => void = () => {},
): Promise<{ unet: string; decoder: string }> {
  let calibration: Promise<{ unet: Ranges; decoder: Ranges }> | undefined;
  const ranges = () => (calibration ??= calibrateOnce(paths, decoder, cacheDir, calibrate, onCalibrate));
  const calibrated = mode !== 'int8-matmul';
  // The decoder's attention stays float in every mode, so int8-attention shares int8's decoder.
  const quantized = async (source: string, label: string, part: 'unet' | 'decoder', partMode: typeof mode) => {
    const entry = await cachedModelEditAsync({
      source,
      cacheDir,
      label: `${label}-${partMode}`,
      editKey: { quantize: partMode, format, version: INT8_VERSION, ...(offsetConvWeights ? { convWeights: 'offset-wide' } : {}) },
      edit: async (model, sourceDir, staging) => {
        const options = { data: { file: INT8_DATA_FILE, staging }, offsetConvWeights };
        const q = quantize(model, sourceDir, calibrated ? (await ranges())[part] : undefined, format, label, partMode === 'int8-attention', options);
        return { model: q.model, result: { convs: q.convs, matmuls: q.matmuls }, data: { file: INT8_DATA_FILE, from: staging } };
      },
    });
    return entry.path;
  };
  const unet = await quantized(paths.unet, 'unet', 'unet', mode);
  return { unet, decoder: calibrated && decoder ? await quantized(paths.decoder, 'vae-decoder', 'decoder', 'int8') : paths.decoder };
}

function quantize(model: Uint8Array, sourceDir: string, ranges: Ranges | undefined, format: Int8Format, label: string, attention: boolean, options: QuantizeOptions): ReturnType<typeof quantizeInt8> {
  try {
    // The attention products first: quantizeInt8 then takes only MatMuls by weights, not these.
    return quantizeInt8(attention ? attentionInInt8(model, format) : model, sourceDir, ranges, format, options);
  } catch (err) {
    if (err instanceof QuantizationError) throw new ModelLoadError(`cannot quantize the ${label} to int8: ${err.message}; run without --quantize`, { cause: err });
    throw err;
  }
}

function attentionInInt8(model: Uint8Array, format: Int8Format): Uint8Array {
  const edited = quantizeAttention(model, format);
  if (edited.attentions === 0) throw new QuantizationError('it has no attention block diffuse recognises (int8-attention needs the attention as exported)');
  return edited.model;
}

/** Calibrates the UNet, and the decoder when it is quantized (else it runs as it is, measuring nothing). */
async function calibrateOnce(paths: { unet: string; decoder: string }, decoder: boolean, cacheDir: string, calibrate: Calibrate, onCalibrate: (what: string) => void) {
  onCalibrate(decoder ? 'UNet and VAE decoder' : 'UNet');
  const graph = (source: string, label: string): CalibrationGraph => {
    const entry = cachedModelEdit({
      source,
      cacheDir,
      label,
      editKey: { rangeOutputs: INT8_VERSION },
      edit: (model) => {
        const c = addRangeOutputs(model);
        return { model: c.model, result: c.activations };
      },
    });
    return { path: entry.path, activations: entry.result };
  };
  const made = [graph(paths.unet, 'unet-calibration'), ...(decoder ? [graph(paths.decoder, 'vae-decoder-calibration')] : [])];
  try {
    return await calibrate({ unet: made[0]!, decoder: made[1] ?? { path: paths.decoder, activations: [] } });
  } finally {
    // Only needed once: the int8 graphs are what stays.
    for (const g of made) rmSync(dirname(g.path), { recursive: true, force: true });
  }
}

/**
 * The session with every run also fetching the calibration outputs, folded into `ranges` (the
 * union of all calls' [min, max]); callers see only what they asked for.
 */
export function recordRanges(opened: OpenedSession, activations: readonly string[], ranges: Ranges): OpenedSession {
  const session = opened.session;
  const names = activations.map((a) => ({ activation: a, ...rangeOutputNames(a) }));
  const extra = names.flatMap((n) => [n.min, n.max]);
  const run = async (feeds: ort.InferenceSession.FeedsType, fetches: readonly string[]): Promise<ort.InferenceSession.ReturnType> => {
    const out = await session.run(feeds, [...fetches, ...extra]);
    for (const { activation, min, max } of names) {
      const seen = ranges.get(activation) ?? { min: Infinity, max: -Infinity };
      ranges.set(activation, { min: Math.min(seen.min, Number(out[min]!.data[0])), max: Math.max(seen.max, Number(out[max]!.data[0])) });
    }
    return Object.fromEntries(fetches.map((f) => [f, out[f]!]));
  };
  return { ...opened, session: Object.assign(Object.create(session) as ort.InferenceSession, { run }) };
}

/** What a UNet takes besides the latents: nothing, an inpainting mask and picture, or a depth channel. */
export type UnetKind = 'plain' | 'inpainting' | 'depth';

/**
 * What calibration runs: two prompts of different kinds at half the model's native size (the
 * ranges of convolutions barely depend on the size, the run costs a quarter), with the sampler
 * the model is meant for: a full CFG trajectory from noise to image for ordinary UNets, LCM's
 * four steps for LCM-distilled ones. Inpainting and depth UNets also get a picture, and a mask
 * or a depth map.
 */
export function calibrationRequests(options: { nativeSize: number; lcm: boolean; unet: UnetKind }): GenerationRequest[] {
  const size = Math.max(64, Math.round(options.nativeSize / 2 / 8) * 8);
  const sampling = options.lcm
    ? ({ sampler: 'lcm', schedule: 'normal', steps: 4, cfgScale: 8 } as const)
    : ({ sampler: 'euler', schedule: 'karras', steps: 10, cfgScale: 7.5 } as const);
  const prompts = [
    ['a photograph of a lighthouse on a rocky coast at sunset, dramatic clouds, highly detailed', 'blurry, low quality'],
    ['portrait of an old woman, oil painting, soft light', ''],
  ] as const;
  return prompts.map(([prompt, negativePrompt], i) => ({
    prompt,
    negativePrompt,
    ...sampling,
    cfgRescale: 0,
    seed: i,
    rng: 'cpu',
    seedMode: 'a1111',
    width: size,
    height: size,
    batchSize: 1,
    ...extraInputs(options.unet, size),
  }));
}

/** A smooth colour gradient to start from; inpainting repaints its middle half, depth rises towards its centre. */
function extraInputs(kind: UnetKind, size: number): Pick<GenerationRequest, 'init' | 'mask' | 'depth'> {
  if (kind === 'plain') return {};
  const image = createRaster(size, size, 3);
  const values = new Float32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      image.data.set([(255 * x) / size, (255 * y) / size, 128], i * 3);
      const dx = Math.abs(x - size / 2);
      const dy = Math.abs(y - size / 2);
      values[i] = kind === 'inpainting' ? (dx < size / 4 && dy < size / 4 ? 1 : 0) : 1 - Math.hypot(dx, dy) / size;
    }
  }
  const init = { image, strength: 1, latents: 'sample' } as const;
  return kind === 'inpainting' ? { init, mask: { values } } : { init: { ...init, strength: 0.8 }, depth: { values, width: size, height: size } };
}
