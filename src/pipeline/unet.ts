import * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../errors.js';
import { floatTensor, toFloat32, type FloatType } from '../onnx/dtype.js';
import { findInput, outputInfo, type OpenedSession, type TensorInfo } from '../onnx/session.js';
import { noTransfers, ResidentInputs, tensorBytes, type Transfers } from '../onnx/resident-inputs.js';
import { DEEP_CACHE_FEATURE } from '../onnx/deep-cache-split.js';
import type { DeepCacheUse } from './deep-cache.js';
import { AddedInputs } from './added-inputs.js';
import type { AddedConditioning } from './text-encoder.js';

/** A ControlNet residual for a whole UNet batch: [batch, C, h, w]. */
export interface Residual {
  data: Float32Array;
  dims: readonly [number, number, number, number];
}

/**
 * The denoising UNet, adapted to what its export declares: a batch dimension that is fixed or
 * dynamic, a timestep of shape [], [1] or [batch] as float or int64, float16 or float32
 * activations, 4 (txt2img) or 9 (inpainting) input channels, the `timestep_cond` input
 * (guidance-scale embedding) of LCM-distilled UNets, and SDXL's `text_embeds` and `time_ids`
 * (optimum's names for diffusers' added_cond_kwargs), and the ControlNet residual inputs of UNets
 * exported to take them (down_block_additional_residual_0…N, mid_block_additional_residual: the
 * layout the ONNX community's ControlNet conversions publish).
 */
export class Unet {
  private readonly sample: TensorInfo;
  private readonly timestep: TensorInfo;
  private readonly context: TensorInfo;
  private readonly timestepCond: TensorInfo | undefined;
  private readonly addedInputs: AddedInputs | undefined;
  private readonly outputName: string;
  readonly floatType: FloatType;
  /** Host↔device bytes of this UNet's runs (bench/webgpu.ts). */
  readonly transfers: Transfers = noTransfers();
  /**
   * On WebGPU the conditioning is uploaded once and fed from the device while it repeats (every
   * step of an image); the CPU provider reads host memory directly and the other GPU providers are
   * untested here, so they are fed from the host as before.
   */
  private readonly resident: ResidentInputs | undefined;
  /** The batch size the graph is fixed to, or undefined when dynamic. */
  readonly fixedBatch: number | undefined;
  readonly inChannels: number | undefined;
  /** The text width it attends to, when the graph fixes it (768 SD 1.x, 1024 SD 2.x). */
  readonly contextWidth: number | undefined;
  /** Width of the `timestep_cond` input (time_cond_proj_dim), or undefined when the graph has none. */
  readonly timestepCondDim: number | undefined;
  /**
   * SDXL UNets: the widths of `text_embeds` (the pooled text) and `time_ids` (6: sizes and crop,
   * as the base; 5: size, crop and aesthetic score, as the refiner); undefined for other UNets.
   */
  readonly added: { textEmbeds: number; timeIds: number } | undefined;
  /** ControlNet residual inputs, the down blocks' in order then the mid block's; empty for plain UNets. */
  readonly residualInputs: readonly TensorInfo[];

  /**
   * layersPerBlock: unet/config.json's (SD's 2 when absent), which places the residuals at their
   * resolutions. shallow: DeepCache's shallow graph (src/onnx/deep-cache-split.ts), when `opened`
   * is the full graph that also outputs the deep feature.
   */
  constructor(
    private readonly opened: OpenedSession,
    private readonly layersPerBlock = 2,
    private readonly shallow?: OpenedSession,
  ) {
    this.resident = opened.provider === 'webgpu' ? new ResidentInputs(opened.provider) : undefined;
    const s = opened.session;
    const sample = findInput(s, 'sample');
    const timestep = findInput(s, 'timestep', 'timesteps', 't');
    const context = findInput(s, 'encoder_hidden_states', 'context');
    if (!sample || !timestep || !context) {
      const names = s.inputNames.join(', ');
      throw new ModelLoadError(`unet/model.onnx inputs (${names}) lack sample, timestep or encoder_hidden_states`);
    }
    this.sample = sample;
    this.timestep = timestep;
    this.context = context;
    this.timestepCond = findInput(s, 'timestep_cond');
    if (this.timestepCond) {
      const width = this.timestepCond.shape[1];
      if (typeof width !== 'number') {
        throw new ModelLoadError(`unet/model.onnx input timestep_cond has no fixed width (shape [${this.timestepCond.shape.join(', ')}])`);
      }
      this.timestepCondDim = width;
    }
    this.addedInputs = AddedInputs.of(s, 'unet/model.onnx');
    this.added = this.addedInputs?.widths;
    this.residualInputs = residualInputs(s.inputNames.map((name) => findInput(s, name)!));
    this.floatType = sample.type === 'float16' ? 'float16' : 'float32';
    this.fixedBatch = typeof sample.shape[0] === 'number' ? sample.shape[0] : undefined;
    this.inChannels = typeof sample.shape[1] === 'number' ? sample.shape[1] : undefined;
    this.contextWidth = typeof context.shape[2] === 'number' ? context.shape[2] : undefined;
    const out = outputInfo(s)[0];
    if (!out) throw new ModelLoadError('unet/model.onnx has no outputs');
    this.outputName = out.name;
  }

  /**
   * One prediction for a batch. sample is [batch, C, h, w]; context is [batch, tokens, width];
   * timestepCond, required exactly when the graph has that input, is [batch, timestepCondDim].
   * Graphs with a fixed batch size are called once per slice of that size.
   */
  async predict(
    sample: Float32Array,
    dims: readonly [number, number, number, number],
    t: number,
    context: Float32Array,
    contextDims: readonly [number, number, number],
    timestepCond?: Float32Array,
    added?: AddedConditioning,
    residuals?: readonly Residual[],
    deepCache?: DeepCacheUse,
  ): Promise<Float32Array> {
    if (deepCache && !this.shallow) throw new ModelLoadError('this UNet was loaded without DeepCache (LoadOptions.deepCache)');
    const [batch] = dims;
    const res = this.residualInputs.length === 0 ? undefined : (residuals ?? this.zeroResiduals(batch, dims[2], dims[3]));
    if (res && res.length !== this.residualInputs.length) {
      throw new ModelLoadError(`unet/model.onnx takes ${this.residualInputs.length} ControlNet residuals; the ControlNet gave ${res.length}`);
    }
    if (residuals && !res) throw new ModelLoadError('unet/model.onnx takes no ControlNet residuals');
    if ((timestepCond === undefined) !== (this.timestepCondDim === undefined)) {
      throw new ModelLoadError(this.timestepCondDim === undefined ? 'unet has no timestep_cond input' : 'unet needs timestep_cond (guidance embedding)');
    }
    if ((added === undefined) !== (this.added === undefined)) {
      throw new ModelLoadError(this.added === undefined ? 'unet has no text_embeds/time_ids inputs' : 'unet needs text_embeds and time_ids (SDXL)');
    }
    const step = this.fixedBatch ?? batch;
    if (batch % step !== 0) {
      throw new ModelLoadError(`unet is exported for batch ${step}; cannot run batch ${batch}`);
    }
    if (step === batch) return this.run(sample, dims, t, context, contextDims, timestepCond, added, res, deepCache && { use: deepCache, slice: 0 });
    const out = new Float32Array(sample.length);
    const perSample = sample.length / batch;
    const perContext = context.length / batch;
    const perCond = (timestepCond?.length ?? 0) / batch;
    const slice = (a: Float32Array, b: number) => a.subarray((b * a.length) / batch, ((b + step) * a.length) / batch);
    for (let b = 0; b < batch; b += step) {
      const part = await this.run(
        sample.subarray(b * perSample, (b + step) * perSample),
        [step, dims[1], dims[2], dims[3]],
        t,
        context.subarray(b * perContext, (b + step) * perContext),
        [step, contextDims[1], contextDims[2]],
        timestepCond?.subarray(b * perCond, (b + step) * perCond),
        added ? { textEmbeds: slice(added.textEmbeds, b), timeIds: slice(added.timeIds, b) } : undefined,
        res?.map((r) => ({ data: slice(r.data, b), dims: [step, r.dims[1], r.dims[2], r.dims[3]] as const })),
        deepCache && { use: deepCache, slice: b },
      );
      out.set(part, b * perSample);
    }
    return out;
  }

  private async run(
    sample: Float32Array,
    dims: readonly number[],
    t: number,
    context: Float32Array,
    contextDims: readonly number[],
    timestepCond: Float32Array | undefined,
    added: AddedConditioning | undefined,
    residuals?: readonly Residual[],
    deep?: { use: DeepCacheUse; slice: number },
  ): Promise<Float32Array> {
    const feeds: Record<string, ort.Tensor> = {
      [this.sample.name]: floatTensor(this.floatType, sample, dims),
      [this.timestep.name]: this.timestepTensor(t, dims[0]!),
      [this.context.name]: floatTensor(this.floatType, context, contextDims),
    };
    if (this.timestepCond && timestepCond) {
      const type = this.timestepCond.type === 'float16' ? 'float16' : 'float32';
      feeds[this.timestepCond.name] = floatTensor(type, timestepCond, [dims[0]!, this.timestepCondDim!]);
    }
    if (this.addedInputs && added) Object.assign(feeds, this.addedInputs.feeds(added, dims[0]!));
    this.residualInputs.forEach((input, i) => {
      const r = residuals![i]!;
      feeds[input.name] = floatTensor(input.type === 'float16' ? 'float16' : 'float32', r.data, r.dims);
    });
    const shallow = deep?.use.reuse ? this.shallow! : undefined;
    if (shallow) {
      // The shallow graph reads only what its layers need (no deep block's inputs).
      for (const name of Object.keys(feeds)) if (!shallow.session.inputNames.includes(name)) delete feeds[name];
    }
    const steady = this.resident ? this.steadyInputs() : [];
    for (const [name, tensor] of Object.entries(feeds)) {
      const kept = steady.includes(name) ? await this.resident!.get(name, tensor) : { tensor, copied: true };
      this.transfers[kept.copied ? 'hostToDevice' : 'keptOnDevice'] += tensorBytes(tensor);
      feeds[name] = kept.tensor;
    }
    if (shallow) {
      const feature = deep!.use.features.get(deep!.slice);
      if (!feature) throw new ModelLoadError('DeepCache: a shallow UNet call came before any full one');
      feeds[DEEP_CACHE_FEATURE] = feature;
    }
    const keep = deep && !shallow;
    const result = await (shallow ?? this.opened).session.run(feeds, keep ? [this.outputName, DEEP_CACHE_FEATURE] : [this.outputName]);
    if (keep) deep.use.features.set(deep.slice, result[DEEP_CACHE_FEATURE]!);
    const out = result[this.outputName]!;
    this.transfers.runs++;
    this.transfers.deviceToHost += tensorBytes(out);
    return toFloat32(out);
  }

  /** Inputs that stay the same from step to step: the text conditioning (SDXL's pooled text and sizes too). */
  private steadyInputs(): string[] {
    return [this.context.name, ...(this.addedInputs?.names ?? [])];
  }

  /** Whether the UNet was loaded split for DeepCache (requests may then set deepCache). */
  get deepCache(): boolean {
    return this.shallow !== undefined;
  }

  async release(): Promise<void> {
    await this.resident?.release();
    await this.shallow?.session.release();
  }

  private timestepTensor(t: number, batch: number): ort.Tensor {
    return timestepTensor(this.timestep, this.sample, t, batch);
  }

  /**
   * Zeros for every residual input (a ControlNet-ready UNet painting without control; diffusers adds
   * nothing then, and x + 0 is x): SD's down path, the input convolution's output, then per block
   * layersPerBlock resnets and a stride-2 downsample except after the last, then the mid block.
   */
  private zeroResiduals(batch: number, h: number, w: number): Residual[] {
    const per = this.layersPerBlock + 1;
    const downs = this.residualInputs.length - 1;
    return this.residualInputs.map((input, i) => {
      const channels = input.shape[1];
      if (typeof channels !== 'number') throw new ModelLoadError(`unet/model.onnx input ${input.name} has no fixed channel count`);
      // Down residual i > 0 is block ⌊(i-1)/per⌋'s resnet or, last in its block, its downsample (one level lower).
      const halvings = i === downs ? downs / per - 1 : i === 0 ? 0 : Math.floor((i - 1) / per) + ((i - 1) % per === this.layersPerBlock ? 1 : 0);
      let [hh, ww] = [h, w];
      for (let k = 0; k < halvings; k++) [hh, ww] = [Math.ceil(hh / 2), Math.ceil(ww / 2)];
      return { data: new Float32Array(batch * channels * hh * ww), dims: [batch, channels, hh, ww] as const };
    });
  }
}

/** The down residual inputs in block order, then the mid block's. */
function residualInputs(inputs: TensorInfo[]): TensorInfo[] {
  const index = (name: string) => Number(/(\d+)\D*$/.exec(name)?.[1] ?? 0);
  const downs = inputs.filter((i) => /down_block.*residual/.test(i.name)).sort((a, b) => index(a.name) - index(b.name));
  const mid = inputs.filter((i) => /mid_block.*residual/.test(i.name));
  return mid.length === 0 && downs.length === 0 ? [] : [...downs, ...mid];
}

/**
 * The timestep as an export declares it. A symbolic first dim shared with the sample's batch means
 * one timestep per sample; otherwise exports take a single value that broadcasts (as diffusers'
 * ONNX pipeline feeds).
 */
export function timestepTensor(timestep: TensorInfo, sample: TensorInfo, t: number, batch: number): ort.Tensor {
  const shape = timestep.shape;
  const count = shape.length === 0 ? 0 : typeof shape[0] === 'number' ? shape[0] : shape[0] === sample.shape[0] ? batch : 1;
  const dims = shape.length === 0 ? [] : [count];
  const n = Math.max(count, 1);
  // Integer exports cannot take the fractional timesteps of Karras-style schedules; diffusers'
  // OnnxStableDiffusionPipeline truncates them (np.array([t], dtype=int64)), and so do we.
  switch (timestep.type) {
    case 'int64':
      return new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(Math.trunc(t))), dims);
    case 'int32':
      return new ort.Tensor('int32', new Int32Array(n).fill(Math.trunc(t)), dims);
    case 'float16':
      return floatTensor('float16', new Float32Array(n).fill(t), dims);
    case 'float64':
      return new ort.Tensor('float64', new Float64Array(n).fill(t), dims);
    default:
      return new ort.Tensor('float32', new Float32Array(n).fill(t), dims);
  }
}
