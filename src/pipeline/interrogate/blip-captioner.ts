import { ModelLoadError } from '../../errors.js';
import { clipPixels, type ClipProcessorSettings } from '../../image/clip-pixels.js';
import { PIL_FILTER_NUMBERS } from '../../image/pil-resample.js';
import type { Raster } from '../../image/raster.js';
import { floatTensor, intTensor, toFloat32 } from '../../onnx/dtype.js';
import type { ort } from '../../onnx/runtime.js';
import { inputInfo, openSession, outputInfo, type OpenedSession, type SessionSettings } from '../../onnx/session.js';
import { WordPieceTokenizer } from '../../text/wordpiece.js';
import { readModelJson } from '../model-files.js';
import { interrogatorFile, interrogatorGraph } from './model-folder.js';

/** BLIP's caption prompt (Salesforce's models/blip.py, which A1111 runs): generation starts from it, the caption drops it. */
export const BLIP_PROMPT = 'a picture of ';

export interface CaptionSettings {
  minLength: number;
  maxLength: number;
}

export interface Caption {
  /** Every token id, the decoder's prompt ([DEC] a picture of) included, as generate returns them. */
  ids: number[];
  /** decode(ids, skip_special_tokens=True) */
  decoded: string;
  /** The decoded text without the prompt's characters, as BLIP's generate returns it to A1111. */
  text: string;
}

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/**
 * BLIP image captioning (BlipForConditionalGeneration): the vision encoder once, then the text decoder
 * greedily, the whole sequence per step (no key/value cache: captions are at most a few dozen tokens),
 * as transformers' generate with num_beams 1 and no sampling: the end token ([SEP]) barred until
 * min_length, stop at it or at max_length (both counting the prompt's tokens).
 */
export class BlipCaptioner {
  private constructor(
    private readonly vision: OpenedSession,
    private readonly decoder: OpenedSession,
    private readonly processor: ClipProcessorSettings,
    private readonly tokenizer: WordPieceTokenizer,
    private readonly ids: { bos: number; sep: number },
  ) {}

  static async open(dir: string, settings: SessionSettings): Promise<BlipCaptioner> {
    const config = readModelJson(interrogatorFile(dir, 'config.json', 'BLIP'));
    const text = (config.text_config ?? {}) as Record<string, unknown>;
    const processor = readBlipProcessor(interrogatorFile(dir, 'preprocessor_config.json', 'BLIP'));
    const tokenizer = WordPieceTokenizer.fromDirectory(dir);
    // BlipTextConfig's defaults are bert-base-uncased's ids plus [DEC] after its 30522 tokens
    const bos = typeof text.bos_token_id === 'number' ? text.bos_token_id : 30522;
    const sep = typeof text.sep_token_id === 'number' ? text.sep_token_id : 102;
    const visionPath = interrogatorGraph(dir, 'vision_model', 'BLIP');
    const decoderPath = interrogatorGraph(dir, 'text_decoder_model', 'BLIP');
    const vision = await openSession(visionPath, settings);
    try {
      const decoder = await openSession(decoderPath, settings);
      const names = inputInfo(decoder.session).map((i) => i.name);
      if (!names.includes('input_ids') || !names.includes('encoder_hidden_states')) {
        await decoder.session.release();
        throw new ModelLoadError(`${decoderPath} takes ${names.join(', ')}; a BLIP text decoder takes input_ids and encoder_hidden_states`);
      }
      return new BlipCaptioner(vision, decoder, processor, tokenizer, { bos, sep });
    } catch (err) {
      await vision.session.release();
      throw err;
    }
  }

  /** pixel_values [1, 3, h, w] as BlipImageProcessor makes them. */
  pixels(image: Raster): { data: Float32Array; width: number; height: number } {
    return clipPixels(this.processor, image);
  }

  async caption(image: Raster, settings: CaptionSettings): Promise<Caption> {
    const pixels = this.pixels(image);
    const visionIn = inputInfo(this.vision.session)[0]!;
    const visionOut = outputInfo(this.vision.session)[0]!.name;
    const floatType = visionIn.type === 'float16' ? 'float16' : 'float32';
    const embeds = (await this.vision.session.run({ [visionIn.name]: floatTensor(floatType, pixels.data, [1, 3, pixels.height, pixels.width]) }, [visionOut]))[visionOut]!;
    // BlipForConditionalGeneration.generate: the prompt's [CLS] becomes [DEC] and its final [SEP] is dropped
    const ids = [this.ids.bos, ...this.tokenizer.encode(BLIP_PROMPT).slice(1, -1)];
    while (ids.length < settings.maxLength) {
      const logits = await this.nextLogits(ids, embeds);
      if (ids.length < settings.minLength) logits[this.ids.sep] = -Infinity;
      ids.push(argmax(logits));
      if (ids.at(-1) === this.ids.sep) break;
    }
    const decoded = this.tokenizer.decode(ids);
    return { ids, decoded, text: decoded.slice(BLIP_PROMPT.length) };
  }

  private async nextLogits(ids: readonly number[], embeds: ort.Tensor): Promise<Float32Array> {
    const inputs = inputInfo(this.decoder.session);
    const idType = inputs.find((i) => i.name === 'input_ids')!.type === 'int32' ? 'int32' : 'int64';
    const feeds: Record<string, ort.Tensor> = {
      input_ids: intTensor(idType, ids, [1, ids.length]),
      encoder_hidden_states: embeds,
    };
    const mask = inputs.find((i) => i.name === 'attention_mask');
    if (mask) feeds.attention_mask = intTensor(mask.type === 'int32' ? 'int32' : 'int64', ids.map(() => 1), [1, ids.length]);
    const imageMask = inputs.find((i) => i.name === 'encoder_attention_mask');
    if (imageMask) feeds.encoder_attention_mask = intTensor(imageMask.type === 'int32' ? 'int32' : 'int64', new Array<number>(embeds.dims[1]!).fill(1), [1, embeds.dims[1]!]);
    const name = outputInfo(this.decoder.session).find((o) => o.name === 'logits')?.name ?? outputInfo(this.decoder.session)[0]!.name;
    const logits = toFloat32((await this.decoder.session.run(feeds, [name]))[name]!);
    const vocab = logits.length / ids.length;
    return logits.slice((ids.length - 1) * vocab);
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.session.release(), this.decoder.session.release()]);
  }
}

/** torch.argmax: the first of equal maxima. */
function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** BlipImageProcessor's preprocessor_config.json: a resize to {height, width}, no crop, rescale, normalise. */
export function readBlipProcessor(path: string): ClipProcessorSettings {
  const raw = readModelJson(path);
  const size = (raw.size ?? { height: 384, width: 384 }) as Record<string, number> | number;
  const square = typeof size === 'number' ? { width: size, height: size } : { width: size.width ?? 384, height: size.height ?? 384 };
  return {
    ...(raw.do_resize !== false ? { resize: square } : {}),
    resample: PIL_FILTER_NUMBERS[typeof raw.resample === 'number' ? raw.resample : 3] ?? 'bicubic',
    rescale: raw.do_rescale === false ? undefined : typeof raw.rescale_factor === 'number' ? raw.rescale_factor : 1 / 255,
    norm: raw.do_normalize === false ? undefined : { mean: (raw.image_mean as number[] | undefined) ?? CLIP_MEAN, std: (raw.image_std as number[] | undefined) ?? CLIP_STD },
  };
}
