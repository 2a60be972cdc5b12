import type * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../errors.js';
import { intTensor, toFloat32 } from '../onnx/dtype.js';
import { findInput, outputInfo, type OpenedSession } from '../onnx/session.js';

/** Hidden states for one prompt: [tokens, width] flattened. */
export interface Conditioning {
  data: Float32Array;
  tokens: number;
  width: number;
}

/** The CLIP text encoder graph: token ids in, last hidden state out. */
export class TextEncoder {
  private readonly idsName: string;
  private readonly idsType: 'int32' | 'int64';
  private readonly outputName: string;

  constructor(private readonly opened: OpenedSession) {
    const ids = findInput(opened.session, 'input_ids');
    if (!ids) throw new ModelLoadError('text_encoder/model.onnx has no input_ids input');
    if (ids.type !== 'int32' && ids.type !== 'int64') {
      throw new ModelLoadError(`text_encoder input_ids has type ${ids.type}; expected int32 or int64`);
    }
    this.idsName = ids.name;
    this.idsType = ids.type;
    const outputs = outputInfo(opened.session);
    const hidden = outputs.find((o) => o.name === 'last_hidden_state') ?? outputs[0];
    if (!hidden) throw new ModelLoadError('text_encoder/model.onnx has no outputs');
    this.outputName = hidden.name;
  }

  get session(): ort.InferenceSession {
    return this.opened.session;
  }

  async encode(ids: readonly number[]): Promise<Conditioning> {
    const feeds = { [this.idsName]: intTensor(this.idsType, ids, [1, ids.length]) };
    const result = await this.opened.session.run(feeds, [this.outputName]);
    const out = result[this.outputName]!;
    const [, tokens, width] = out.dims as number[];
    return { data: toFloat32(out), tokens: tokens!, width: width! };
  }
}
