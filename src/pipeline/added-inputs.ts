import type * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../errors.js';
import { floatTensor } from '../onnx/dtype.js';
import { findInput, type TensorInfo } from '../onnx/session.js';
import type { AddedConditioning } from './text-encoder.js';

/**
 * SDXL's added conditioning inputs, `text_embeds` (the pooled text) and `time_ids` (the
 * micro-conditioning numbers), under optimum's names for diffusers' added_cond_kwargs: the UNet's
 * and an SDXL ControlNet's (which embeds them the same way into its own time embedding).
 */
export class AddedInputs {
  private constructor(
    private readonly textEmbeds: TensorInfo,
    private readonly timeIds: TensorInfo,
    /** Values per image: the pooled width, and 6 (sizes and crop, base) or 5 (with the aesthetic score, refiner). */
    readonly widths: { textEmbeds: number; timeIds: number },
  ) {}

  /** The graph's added inputs, or undefined when it has neither; `label` names the graph in the error. */
  static of(session: ort.InferenceSession, label: string): AddedInputs | undefined {
    const textEmbeds = findInput(session, 'text_embeds');
    const timeIds = findInput(session, 'time_ids');
    if (!textEmbeds && !timeIds) return undefined;
    const [pooled, ids] = [textEmbeds?.shape[1], timeIds?.shape[1]];
    if (!textEmbeds || !timeIds || typeof pooled !== 'number' || typeof ids !== 'number') {
      throw new ModelLoadError(`${label} needs both text_embeds and time_ids with fixed widths (SDXL); it declares ${session.inputNames.join(', ')}`);
    }
    return new AddedInputs(textEmbeds, timeIds, { textEmbeds: pooled, timeIds: ids });
  }

  get names(): string[] {
    return [this.textEmbeds.name, this.timeIds.name];
  }

  /** The two feeds for a batch of `batch` images. */
  feeds(added: AddedConditioning, batch: number): Record<string, ort.Tensor> {
    return { [this.textEmbeds.name]: tensor(this.textEmbeds, added.textEmbeds, batch), [this.timeIds.name]: tensor(this.timeIds, added.timeIds, batch) };
  }
}

function tensor(input: TensorInfo, values: Float32Array, batch: number): ort.Tensor {
  const width = input.shape[1] as number;
  if (values.length !== batch * width) throw new ModelLoadError(`input ${input.name} takes ${width} values per image; got ${values.length / batch}`);
  return floatTensor(input.type === 'float16' ? 'float16' : 'float32', values, [batch, width]);
}
