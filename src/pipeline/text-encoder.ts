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
  /** SDXL: the UNet's added conditioning (pooled text embedding, micro-conditioning time ids). */
  added?: AddedConditioning;
}

/** What SDXL's UNet takes besides the hidden states (its `text_embeds` and `time_ids` inputs). */
export interface AddedConditioning {
  /** The last text encoder's pooled, projected output (diffusers' pooled_prompt_embeds). */
  textEmbeds: Float32Array;
  /** Original size, crop and target size (base) or original size, crop and aesthetic score (refiner). */
  timeIds: Float32Array;
}

/** One encoder call: the hidden states and, where the encoder has one, the pooled output. */
export interface EncodedText extends Conditioning {
  pooled?: Float32Array;
}

/**
 * Which output holds the prompt's hidden states: a name (prepareTextEncoderModel's hiddenOutput),
 * or, for exports that list every layer's states as hidden_states.0 … hidden_states.L (optimum's
 * SDXL encoders), the layer counted from the end: 0 = the last layer's states, 1 = the
 * penultimate (SDXL's; no final layer norm, as diffusers' hidden_states[-2]).
 */
export type HiddenOutput = string | { layerFromEnd: number };

export interface TextEncoderOptions {
  /** Default last_hidden_state. */
  hiddenOutput?: HiddenOutput;
  /** The output holding the pooled, projected embedding (SDXL's second encoder: text_embeds), read with the hidden states. */
  pooledOutput?: string;
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
  private readonly pooledName: string | undefined;
  private opened: OpenedSession | undefined;
  private readonly reopen: (() => Promise<OpenedSession>) | undefined;
  private readonly remembered = new Map<string, EncodedText>();

  constructor(opened: OpenedSession, options: TextEncoderOptions = {}) {
    const ids = findInput(opened.session, 'input_ids');
    if (!ids) throw new ModelLoadError('text_encoder/model.onnx has no input_ids input');
    if (ids.type !== 'int32' && ids.type !== 'int64') {
      throw new ModelLoadError(`text_encoder input_ids has type ${ids.type}; expected int32 or int64`);
    }
    this.idsName = ids.name;
    this.idsType = ids.type;
    const outputs = outputInfo(opened.session);
    this.outputName = typeof options.hiddenOutput === 'object' ? layerOutput(outputs.map((o) => o.name), options.hiddenOutput.layerFromEnd) : namedOutput(outputs, options.hiddenOutput);
    if (options.pooledOutput && !outputs.some((o) => o.name === options.pooledOutput)) {
      throw new ModelLoadError(`the text encoder has no output ${options.pooledOutput} (outputs: ${outputs.map((o) => o.name).join(', ')})`);
    }
    this.pooledName = options.pooledOutput;
    this.opened = opened;
    this.reopen = options.reopen;
  }

  async encode(ids: readonly number[]): Promise<EncodedText> {
    const key = ids.join(',');
    const known = this.remembered.get(key);
    if (known) return copy(known);
    this.opened ??= await this.reopen!();
    const feeds = { [this.idsName]: intTensor(this.idsType, ids, [1, ids.length]) };
    const names = this.pooledName ? [this.outputName, this.pooledName] : [this.outputName];
    const result = await this.opened.session.run(feeds, names);
    const out = result[this.outputName]!;
    const [, tokens, width] = out.dims as number[];
    const encoded: EncodedText = { data: toFloat32(out), tokens: tokens!, width: width!, ...(this.pooledName ? { pooled: toFloat32(result[this.pooledName]!) } : {}) };
    if (this.remembered.size >= REMEMBERED_PROMPTS) this.remembered.delete(this.remembered.keys().next().value!);
    this.remembered.set(key, copy(encoded));
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

function namedOutput(outputs: readonly { name: string }[], name: string | undefined): string {
  const hidden = name ? outputs.find((o) => o.name === name) : (outputs.find((o) => o.name === LAST_HIDDEN_STATE) ?? outputs[0]);
  if (!hidden) throw new ModelLoadError(`text_encoder/model.onnx has no output ${name ?? ''}`.trim());
  return hidden.name;
}

/** hidden_states.{L - fromEnd} of an export whose outputs list hidden_states.0 (the embeddings) … hidden_states.L. */
function layerOutput(names: readonly string[], fromEnd: number): string {
  const layers = names.filter((n) => /^hidden_states\.\d+$/.test(n)).length - 1;
  if (layers < 1) {
    throw new ModelLoadError(`this SDXL text encoder export has no hidden_states.N outputs (it lists ${names.join(', ')}); export it with optimum, which adds them for SDXL`);
  }
  // Layer 0 is the embeddings, not a transformer layer: at most layers - 1 layers can be skipped.
  if (fromEnd >= layers) throw new UsageError(`--clip-skip asks for the states ${fromEnd} layers before the last, but this text encoder has ${layers} layers: use a smaller --clip-skip`);
  return `hidden_states.${layers - fromEnd}`;
}

function copy(e: EncodedText): EncodedText {
  return { ...e, data: e.data.slice(), ...(e.pooled ? { pooled: e.pooled.slice() } : {}) };
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
