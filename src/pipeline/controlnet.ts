import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError, UsageError } from '../errors.js';
import { floatTensor, toFloat32, type FloatType } from '../onnx/dtype.js';
import { findInput, outputInfo, type OpenedSession, type TensorInfo } from '../onnx/session.js';
import { AddedInputs } from './added-inputs.js';
import type { AddedConditioning } from './text-encoder.js';
import { timestepTensor, type Residual } from './unet.js';

/**
 * A ControlNet graph in the ONNX community layout (`controlnet/model.onnx`): the UNet's sample,
 * timestep and text conditioning plus `controlnet_cond` (the control image, RGB in [0, 1] at pixel
 * size) and `conditioning_scale` in; the down blocks' residuals then the mid block's out, each
 * already multiplied by the scale, as diffusers' ControlNetModel.forward returns them. An SDXL
 * ControlNet also takes the UNet's text_embeds and time_ids (src/graphs/controlnet.ts builds both).
 */
export class ControlNet {
  private readonly sample: TensorInfo;
  private readonly timestep: TensorInfo;
  private readonly context: TensorInfo;
  private readonly cond: TensorInfo;
  private readonly scale: TensorInfo | undefined;
  private readonly addedInputs: AddedInputs | undefined;
  private readonly outputs: string[];
  private readonly floatType: FloatType;

  constructor(
    private readonly opened: OpenedSession,
    /** Where it was loaded from, for messages. */
    readonly path: string,
  ) {
    const s = opened.session;
    const sample = findInput(s, 'sample');
    const timestep = findInput(s, 'timestep', 'timesteps', 't');
    const context = findInput(s, 'encoder_hidden_states', 'context');
    const cond = findInput(s, 'controlnet_cond', 'cond', 'hint');
    if (!sample || !timestep || !context || !cond) {
      throw new ModelLoadError(`${path}: a ControlNet takes sample, timestep, encoder_hidden_states and controlnet_cond; this graph takes ${s.inputNames.join(', ')}`);
    }
    [this.sample, this.timestep, this.context, this.cond] = [sample, timestep, context, cond];
    this.scale = findInput(s, 'conditioning_scale');
    this.addedInputs = AddedInputs.of(s, path);
    const names = outputInfo(s).map((o) => o.name);
    const index = (name: string) => Number(/(\d+)\D*$/.exec(name)?.[1] ?? 0);
    const downs = names.filter((n) => /down/.test(n)).sort((a, b) => index(a) - index(b));
    const mids = names.filter((n) => /mid/.test(n));
    if (mids.length !== 1 || downs.length + 1 !== names.length) {
      throw new ModelLoadError(`${path}: a ControlNet returns down block residuals and one mid block residual; this graph returns ${names.join(', ')}`);
    }
    this.outputs = [...downs, mids[0]!];
    this.floatType = sample.type === 'float16' ? 'float16' : 'float32';
  }

  /** The text width it attends to, when the graph fixes it (the UNet's must be the same). */
  get contextWidth(): number | undefined {
    const width = this.context.shape[2];
    return typeof width === 'number' ? width : undefined;
  }

  /** Whether it reads SDXL's added conditioning (text_embeds, time_ids): an SDXL ControlNet. */
  get sdxl(): boolean {
    return this.addedInputs !== undefined;
  }

  /** How many residuals it returns (the UNet must take as many). */
  get residualCount(): number {
    return this.outputs.length;
  }

  /**
   * The residuals for a batch: sample [n, C, h, w], context [n, tokens, width], the control image
   * [n, 3, H, W], and for an SDXL ControlNet the batch's added conditioning. A graph without a
   * conditioning_scale input is scaled here, as the graph would.
   */
  async residuals(
    sample: Float32Array,
    dims: readonly [number, number, number, number],
    t: number,
    context: Float32Array,
    contextDims: readonly [number, number, number],
    image: Float32Array,
    imageDims: readonly [number, number, number, number],
    scale: number,
    added?: AddedConditioning,
  ): Promise<Residual[]> {
    const feeds: Record<string, ort.Tensor> = {
      [this.sample.name]: floatTensor(this.floatType, sample, dims),
      [this.timestep.name]: timestepTensor(this.timestep, this.sample, t, dims[0]),
      [this.context.name]: floatTensor(this.floatType, context, contextDims),
      [this.cond.name]: floatTensor(this.cond.type === 'float16' ? 'float16' : 'float32', image, imageDims),
    };
    if (this.scale) feeds[this.scale.name] = scalarTensor(this.scale, scale);
    if (this.addedInputs) {
      if (!added) throw new ModelLoadError(`${this.path}: an SDXL ControlNet needs the pooled text and time ids (text_embeds, time_ids)`);
      Object.assign(feeds, this.addedInputs.feeds(added, dims[0]));
    }
    const result = await this.opened.session.run(feeds, this.outputs);
    return this.outputs.map((name) => {
      const tensor = result[name]!;
      const data = toFloat32(tensor);
      if (!this.scale && scale !== 1) {
        const f = Math.fround(scale);
        for (let i = 0; i < data.length; i++) data[i] = data[i]! * f;
      }
      const [n, c, h, w] = tensor.dims as [number, number, number, number];
      return { data, dims: [n, c, h, w] as const };
    });
  }

  release(): Promise<void> {
    return this.opened.session.release();
  }
}

function scalarTensor(info: TensorInfo, value: number): ort.Tensor {
  const dims = info.shape.length === 0 ? [] : info.shape.map(() => 1);
  if (info.type === 'float16') return floatTensor('float16', new Float32Array([value]), dims);
  if (info.type === 'float64') return new ort.Tensor('float64', new Float64Array([value]), dims);
  return new ort.Tensor('float32', new Float32Array([value]), dims);
}

/** A loaded ControlNet and what the metadata calls it. */
export interface LoadedControlNet {
  /** The folder as given (LoadOptions.controlnets). */
  dir: string;
  /** A1111's model name: the folder's name, or a converted file's name without extension. */
  name: string;
  /** sd-webui-controlnet's hash of a converted file (its old 8-digit model hash); otherwise the graph's weights are hashed. */
  hash?: string;
  net: ControlNet;
}

const GRAPHS = ['controlnet/model.onnx', 'model.onnx'];

/** Whether a folder holds a ControlNet graph where controlNetGraph looks. */
export function hasControlNetGraph(dir: string): boolean {
  return GRAPHS.some((g) => existsSync(join(dir, g)));
}

/** A ControlNet folder's graph: DIR/controlnet/model.onnx (a model folder's layout) or DIR/model.onnx. */
export function controlNetGraph(dir: string): string {
  for (const path of GRAPHS.map((g) => join(dir, g))) if (existsSync(path)) return path;
  throw new UsageError(`ControlNet ${dir}: no controlnet/model.onnx or model.onnx there; pass a ControlNet folder in the ONNX layout (controlnet/model.onnx)`);
}
