import { ModelLoadError } from '../errors.js';
import { floatTensor, toFloat32, type FloatType } from '../onnx/dtype.js';
import { inputInfo, outputInfo, type OpenedSession } from '../onnx/session.js';

/** One image at a time: exports often fix the batch to 1, and it bounds memory at large sizes. */
abstract class VaePart {
  protected readonly inputName: string;
  protected readonly floatType: FloatType;
  protected readonly outputName: string;

  constructor(protected readonly opened: OpenedSession, label: string, channels: number | undefined) {
    const input = inputInfo(opened.session)[0];
    const output = outputInfo(opened.session)[0];
    if (!input || !output) throw new ModelLoadError(`${label}/model.onnx needs one input and one output`);
    // A graph of the wrong kind (another part of a model, a classifier) is told apart before it runs.
    const inChannels = input.shape[1];
    if ((input.type !== 'float32' && input.type !== 'float16') || input.shape.length !== 4 || (typeof inChannels === 'number' && channels !== undefined && inChannels !== channels)) {
      const expected = `a float [batch, ${channels ?? 'C'}, height, width] input`;
      throw new ModelLoadError(`${label}/model.onnx is not a VAE ${label === 'vae_decoder' ? 'decoder' : 'encoder'} for this model: its input ${input.name} is ${input.type} [${input.shape.join(', ')}], not ${expected}`);
    }
    this.inputName = input.name;
    this.floatType = input.type === 'float16' ? 'float16' : 'float32';
    this.outputName = output.name;
  }

  protected async runOne(data: Float32Array, dims: readonly number[]): Promise<{ data: Float32Array; dims: number[] }> {
    const feeds = { [this.inputName]: floatTensor(this.floatType, data, dims) };
    const result = await this.opened.session.run(feeds, [this.outputName]);
    const out = result[this.outputName]!;
    return { data: toFloat32(out), dims: [...out.dims] };
  }
}

export class VaeDecoder extends VaePart {
  /** `latentChannels`: the model's (the decoder's input must take that many). */
  constructor(opened: OpenedSession, latentChannels?: number) {
    super(opened, 'vae_decoder', latentChannels);
  }

  /** latents [C, h, w] (already divided by the scaling factor) → image [3, H, W] in about [-1, 1]. */
  async decode(latents: Float32Array, dims: readonly [number, number, number]): Promise<{ data: Float32Array; height: number; width: number }> {
    const out = await this.runOne(latents, [1, ...dims]);
    return { data: out.data, height: out.dims[2]!, width: out.dims[3]! };
  }
}

/** How a VAE encoder export reports the latent distribution. */
export type EncoderOutput = 'sample' | 'parameters';

export class VaeEncoder extends VaePart {
  /** optimum ≥1.14 exports the distribution's parameters; older exports a drawn sample. */
  readonly output: EncoderOutput;

  constructor(opened: OpenedSession) {
    super(opened, 'vae_encoder', 3);
    this.output = this.outputName === 'latent_parameters' ? 'parameters' : 'sample';
  }

  /**
   * image [3, H, W] in [-1, 1] → the encoder's raw output: [2C, h, w] (mean, logvar) for
   * 'parameters', [C, h, w] for 'sample'.
   */
  async encode(image: Float32Array, height: number, width: number): Promise<{ data: Float32Array; dims: number[] }> {
    const out = await this.runOne(image, [1, 3, height, width]);
    return { data: out.data, dims: out.dims.slice(1) };
  }
}
