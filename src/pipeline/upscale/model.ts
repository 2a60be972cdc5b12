// An image-to-image upscaling graph (Real-ESRGAN's RRDBNet x4plus / x2plus, SRVGGNetCompact, and any other
// network of that contract): one NCHW input of 3 channels in [0, 1], one NCHW output of 3 channels, `scale`
// times the input's height and width. The scale and the sizes the graph accepts are read by running it on
// tiny pictures (a published graph may carry neither in its shapes), not assumed from a name.

import { ModelLoadError, UsageError, describeCause } from '../../errors.js';
import { floatTensor, toFloat32, type FloatType } from '../../onnx/dtype.js';
import { ort } from '../../onnx/runtime.js';
import { inputInfo, openSession, outputInfo, type Device, type SessionSettings } from '../../onnx/session.js';
import type { Raster } from '../../image/raster.js';

/** Which order the model is fed the colours in: its own (RGB, as Real-ESRGAN and ComfyUI feed it) or A1111's BGR. */
export type ChannelOrder = 'rgb' | 'bgr';

export interface Upscaler {
  path: string;
  session: ort.InferenceSession;
  provider: Exclude<Device, 'auto'>;
  inputName: string;
  outputName: string;
  dtype: FloatType;
  /** Output size / input size. */
  scale: number;
  /** Input height and width must be multiples of this (2 for x2plus's pixel unshuffle, 4 for x1's). */
  multiple: number;
  release(): Promise<void>;
}

/** A float NCHW picture (batch 1). */
export interface FloatImage {
  width: number;
  height: number;
  /** 3 planes of width * height. */
  data: Float32Array;
}

const PROBE = 12;

/** Why a graph is not an image-to-image upscaler, or undefined. Shapes may be symbolic: only fixed numbers are checked. */
function contractProblem(session: ort.InferenceSession): string | undefined {
  const inputs = inputInfo(session);
  const outputs = outputInfo(session);
  if (inputs.length !== 1 || outputs.length < 1) return `it has ${inputs.length} inputs and ${outputs.length} outputs (an upscaler has one picture in and one out)`;
  const [input] = inputs;
  const [output] = outputs;
  for (const [what, t] of [['input', input!], ['output', output!]] as const) {
    if (t.type !== 'float32' && t.type !== 'float16') return `its ${what} '${t.name}' is ${t.type}, not a float picture`;
    if (t.shape.length !== 4) return `its ${what} '${t.name}' has ${t.shape.length} dimensions, not 4 (NCHW)`;
    if (typeof t.shape[1] === 'number' && t.shape[1] !== 3) return `its ${what} '${t.name}' has ${t.shape[1]} channels, not 3 (RGB)`;
  }
  const fixed = input!.shape.slice(2).filter((d) => typeof d === 'number');
  if (fixed.length > 0) return `its input has a fixed size (${input!.shape.join('x')}); tiles need a graph exported with dynamic height and width`;
  return undefined;
}

async function run(u: Pick<Upscaler, 'session' | 'inputName' | 'outputName' | 'dtype'>, data: Float32Array, height: number, width: number, quiet = false): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const feeds = { [u.inputName]: floatTensor(u.dtype, data, [1, 3, height, width]) };
  // a probe of a size the graph refuses is expected to fail: ONNX Runtime's own error log would be noise
  const out = (await u.session.run(feeds, quiet ? { logSeverityLevel: 4 } : {}))[u.outputName]!;
  return { data: toFloat32(out), dims: out.dims };
}

/** The scale of the graph, from one run on `size`², or a reason it fails. */
async function probe(u: Pick<Upscaler, 'session' | 'inputName' | 'outputName' | 'dtype'>, size: number): Promise<number | string> {
  try {
    const { dims } = await run(u, new Float32Array(3 * size * size).fill(0.5), size, size, true);
    if (dims.length !== 4 || dims[1] !== 3) return `it returns a ${dims.join('x')} tensor, not a 3-channel picture`;
    const [h, w] = [Number(dims[2]), Number(dims[3])];
    if (h !== w || h % size !== 0 || h < size) return `a ${size}x${size} picture comes out ${w}x${h}, not a whole multiple of it`;
    return h / size;
  } catch (err) {
    return describeCause(err);
  }
}

/**
 * Opens an upscaler graph and learns its scale (a run on a 12x12 picture) and the sizes it takes (runs on
 * 13x13 and 14x14: a graph that pixel-unshuffles takes only multiples of 2 or 4). A graph that is not an
 * image-to-image network is refused in one line (exit 2).
 */
export async function loadUpscaler(path: string, settings: SessionSettings): Promise<Upscaler> {
  const { session, provider } = await openSession(path, settings);
  try {
    const problem = contractProblem(session);
    if (problem) throw new UsageError(`${path} is not an image upscaler: ${problem}`);
    const input = inputInfo(session)[0]!;
    const base = { session, inputName: input.name, outputName: outputInfo(session)[0]!.name, dtype: input.type as FloatType };
    const scale = await probe(base, PROBE);
    if (typeof scale === 'string') throw new UsageError(`${path} is not an image upscaler: ${scale}`);
    const multiple = (await probe(base, PROBE + 1)) === scale ? 1 : (await probe(base, PROBE + 2)) === scale ? 2 : 4;
    return { path, provider, scale, multiple, ...base, release: () => session.release() };
  } catch (err) {
    await session.release();
    if (err instanceof UsageError) throw err;
    throw new ModelLoadError(`cannot use ${path} as an upscaler: ${describeCause(err)}`, { cause: err });
  }
}

/**
 * A tile as the model's input: HWC uint8 to NCHW float in [0, 1] (x / 255, as A1111's and Real-ESRGAN's
 * float64 division rounded to float32), channels in `order`, reflect-padded on the right and bottom to the
 * graph's multiple as spandrel's RRDBNet does before its pixel unshuffle (Real-ESRGAN's mod_pad is the
 * same reflection).
 */
function inputPlanes(tile: Raster, order: ChannelOrder, multiple: number): { data: Float32Array; width: number; height: number } {
  const width = Math.ceil(tile.width / multiple) * multiple;
  const height = Math.ceil(tile.height / multiple) * multiple;
  if (width - tile.width >= tile.width || height - tile.height >= tile.height) throw new RangeError(`a ${tile.width}x${tile.height} tile is too small to reflect-pad to a multiple of ${multiple}`);
  const reflect = (i: number, n: number) => (i < n ? i : 2 * (n - 1) - i);
  const data = new Float32Array(3 * width * height);
  const plane = width * height;
  for (let y = 0; y < height; y++) {
    const sy = reflect(y, tile.height);
    for (let x = 0; x < width; x++) {
      const s = (sy * tile.width + reflect(x, tile.width)) * tile.channels;
      for (let c = 0; c < 3; c++) data[(order === 'bgr' ? 2 - c : c) * plane + y * width + x] = tile.data[s + c]! / 255;
    }
  }
  return { data, width, height };
}

/** The model's float output for one tile (unclamped, NCHW, cropped back from any padding). */
export async function upscaleTileFloat(u: Upscaler, tile: Raster, order: ChannelOrder = 'rgb'): Promise<FloatImage> {
  const input = inputPlanes(tile, order, u.multiple);
  const out = await run(u, input.data, input.height, input.width);
  const [outH, outW] = [Number(out.dims[2]), Number(out.dims[3])];
  if (outH !== input.height * u.scale || outW !== input.width * u.scale) {
    throw new ModelLoadError(`${u.path}: a ${input.width}x${input.height} tile came out ${outW}x${outH}, not ${u.scale} times larger`);
  }
  const width = tile.width * u.scale;
  const height = tile.height * u.scale;
  if (width === outW && height === outH) return order === 'rgb' ? { width, height, data: out.data } : { width, height, data: swapRB(out.data, width * height) };
  const data = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++) {
    const from = (order === 'bgr' ? 2 - c : c) * outW * outH;
    for (let y = 0; y < height; y++) data.set(out.data.subarray(from + y * outW, from + y * outW + width), c * width * height + y * width);
  }
  return { width, height, data };
}

function swapRB(data: Float32Array, plane: number): Float32Array {
  const out = new Float32Array(data.length);
  out.set(data.subarray(2 * plane, 3 * plane), 0);
  out.set(data.subarray(plane, 2 * plane), plane);
  out.set(data.subarray(0, plane), 2 * plane);
  return out;
}

/**
 * A float picture to 8 bits as A1111's upscale_without_tiling (and ComfyUI's image save) do: clamped to
 * [0, 1], times 255 in float32, truncated. (Real-ESRGAN's own script rounds instead.)
 */
export function floatToRaster(img: FloatImage): Raster {
  const plane = img.width * img.height;
  const data = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = img.data[c * plane + i]!;
      data[i * 3 + c] = Math.trunc(Math.fround((v < 0 ? 0 : v > 1 ? 1 : v) * 255));
    }
  }
  return { width: img.width, height: img.height, channels: 3, data };
}

/** One tile through the model, as 8-bit RGB. */
export async function upscaleTile(u: Upscaler, tile: Raster, order: ChannelOrder = 'rgb'): Promise<Raster> {
  return floatToRaster(await upscaleTileFloat(u, tile, order));
}
