import { ModelLoadError, UsageError } from '../errors.js';
import { intTensor, toFloat32 } from '../onnx/dtype.js';
import { cachedModelEdit } from '../onnx/edited-model-cache.js';
import { findInput, outputInfo, type OpenedSession } from '../onnx/session.js';
import { LAST_HIDDEN_STATE, TextEncoderStructureError, editTextEncoder } from '../onnx/text-encoder-edit.js';
import type { TextualInversion } from '../text/embeddings.js';

/** Hidden states for one prompt: [tokens, width] flattened. */
export interface Conditioning {
  data: Float32Array;
  tokens: number;
  width: number;
}

export interface TextEncoderOptions {
  /** The output holding the prompt's hidden states (prepareTextEncoderModel's hiddenOutput); default last_hidden_state. */
  hiddenOutput?: string;
  /** How to open the graph again after park(); without it park() keeps the graph. */
  reopen?: () => Promise<OpenedSession>;
}

/** Prompts kept encoded, so parking costs nothing when the next image repeats them. */
const REMEMBERED_PROMPTS = 16;

/** The CLIP text encoder graph: token ids in, last hidden state (or the chosen hidden output) out. */
export class TextEncoder {
  private readonly idsName: string;
  private readonly idsType: 'int32' | 'int64';
  private readonly outputName: string;
  private opened: OpenedSession | undefined;
  private readonly reopen: (() => Promise<OpenedSession>) | undefined;
  private readonly remembered = new Map<string, Conditioning>();

  constructor(opened: OpenedSession, options: TextEncoderOptions = {}) {
    const ids = findInput(opened.session, 'input_ids');
    if (!ids) throw new ModelLoadError('text_encoder/model.onnx has no input_ids input');
    if (ids.type !== 'int32' && ids.type !== 'int64') {
      throw new ModelLoadError(`text_encoder input_ids has type ${ids.type}; expected int32 or int64`);
    }
    this.idsName = ids.name;
    this.idsType = ids.type;
    const outputs = outputInfo(opened.session);
    const hidden = options.hiddenOutput
      ? outputs.find((o) => o.name === options.hiddenOutput)
      : (outputs.find((o) => o.name === LAST_HIDDEN_STATE) ?? outputs[0]);
    if (!hidden) throw new ModelLoadError(`text_encoder/model.onnx has no output ${options.hiddenOutput ?? ''}`.trim());
    this.outputName = hidden.name;
    this.opened = opened;
    this.reopen = options.reopen;
  }

  async encode(ids: readonly number[]): Promise<Conditioning> {
    const key = ids.join(',');
    const known = this.remembered.get(key);
    if (known) return { ...known, data: known.data.slice() };
    this.opened ??= await this.reopen!();
    const feeds = { [this.idsName]: intTensor(this.idsType, ids, [1, ids.length]) };
    const result = await this.opened.session.run(feeds, [this.outputName]);
    const out = result[this.outputName]!;
    const [, tokens, width] = out.dims as number[];
    const encoded = { data: toFloat32(out), tokens: tokens!, width: width! };
    if (this.remembered.size >= REMEMBERED_PROMPTS) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(key, { ...encoded, data: encoded.data.slice() });
    return encoded;
  }

  /**
   * Frees the graph until a prompt not encoded before needs it. The pipeline parks it before the
   * UNet runs: the text encoder's weights need not share the peak with the UNet and the VAE.
   */
  async park(): Promise<void> {
    if (!this.reopen || !this.opened) return;
    const opened = this.opened;
    this.opened = undefined;
    await opened.session.release();
  }

  async release(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    await opened?.session.release();
  }
}

/** What to change in the text encoder graph before opening it. */
export interface TextEncoderVariant {
  /** A1111 numbering: 1 (default) = last layer, 2 = penultimate, ... */
  clipSkip?: number;
  /** Textual-inversion embeddings to add to the token table, in this order. */
  embeddings?: readonly TextualInversion[];
}

export interface PreparedTextEncoder {
  /** The model file to open: the source itself when nothing changes, else the cached edit. */
  path: string;
  hiddenOutput: string;
  /** Per embedding (same order): its trigger name and the token ids its vectors got. */
  embeddings: Array<{ name: string; ids: number[] }>;
}

/**
 * Applies CLIP skip and textual-inversion embeddings to the text encoder at `modelPath`,
 * caching the edited graph under `cacheDir` keyed by the model's sha256 and the edit.
 */
export function prepareTextEncoderModel(modelPath: string, variant: TextEncoderVariant, cacheDir: string): PreparedTextEncoder {
  const clipSkip = variant.clipSkip ?? 1;
  const embeddings = variant.embeddings ?? [];
  if (clipSkip === 1 && embeddings.length === 0) return { path: modelPath, hiddenOutput: LAST_HIDDEN_STATE, embeddings: [] };
  const editKey = { clipSkip, embeddings: embeddings.map((e) => ({ sha256: e.sha256, count: e.count, width: e.width })) };
  try {
    const { path, result } = cachedModelEdit({
      source: modelPath,
      cacheDir,
      label: 'text-encoder',
      editKey,
      edit: (model) => {
        const edited = editTextEncoder(model, { clipSkip, embeddings });
        return { model: edited.model, result: { hiddenOutput: edited.hiddenOutput, embeddingIds: edited.embeddingIds } };
      },
    });
    return { path, hiddenOutput: result.hiddenOutput, embeddings: embeddings.map((e, i) => ({ name: e.name, ids: result.embeddingIds[i]! })) };
  } catch (err) {
    if (err instanceof TextEncoderStructureError) throw new ModelLoadError(`${modelPath}: ${err.message}`, { cause: err });
    // A clip skip or embedding width this model cannot take: the request, not the model, is wrong.
    if (err instanceof RangeError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
}
