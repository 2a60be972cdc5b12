import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ModelLoadError } from '../../errors.js';
import { clipPixels, type ClipProcessorSettings } from '../../image/clip-pixels.js';
import type { Raster } from '../../image/raster.js';
import { floatTensor, intTensor, toFloat32 } from '../../onnx/dtype.js';
import type { ort } from '../../onnx/runtime.js';
import { inputInfo, openSession, outputInfo, type OpenedSession, type SessionSettings } from '../../onnx/session.js';
import { ClipTokenizer } from '../../text/clip-tokenizer.js';
import { readClipProcessor } from '../safety-checker.js';
import { interrogatorFile, interrogatorGraph } from './model-folder.js';

/** CLIP's context: openai's clip.tokenize and open_clip's tokenize make 77 positions. */
export const CLIP_CONTEXT = 77;
/** Terms encoded per text-model run. */
const TEXT_BATCH = 32;

/**
 * CLIP's two towers with their projections, as transformers.js exports them (vision_model.onnx:
 * pixel_values -> image_embeds; text_model.onnx: input_ids -> text_embeds), features returned L2-normalised
 * as A1111 and clip-interrogator use them.
 */
export class ClipEncoder {
  private constructor(
    private readonly vision: OpenedSession,
    private readonly text: OpenedSession,
    private readonly processor: ClipProcessorSettings,
    readonly tokenizer: ClipTokenizer,
    /** Which text model made a feature: its resolved path, size and modification time. */
    readonly textModelIdentity: string,
  ) {}

  static async open(dir: string, settings: SessionSettings): Promise<ClipEncoder> {
    const processor = readClipProcessor(interrogatorFile(dir, 'preprocessor_config.json', 'CLIP'));
    interrogatorFile(dir, 'vocab.json', 'CLIP');
    const tokenizer = await ClipTokenizer.fromDirectory(dir);
    const visionPath = interrogatorGraph(dir, 'vision_model', 'CLIP');
    const textPath = interrogatorGraph(dir, 'text_model', 'CLIP');
    const stat = statSync(textPath);
    const vision = await openSession(visionPath, settings);
    try {
      const text = await openSession(textPath, settings);
      if (!inputInfo(text.session).some((i) => i.name === 'input_ids')) {
        await text.session.release();
        throw new ModelLoadError(`${textPath} has no input_ids input; a CLIP text model takes input_ids`);
      }
      return new ClipEncoder(vision, text, processor, tokenizer, `${resolve(textPath)}\n${stat.size}\n${stat.mtimeMs}`);
    } catch (err) {
      await vision.session.release();
      throw err;
    }
  }

  /** pixel_values as CLIPImageProcessor makes them. */
  pixels(image: Raster): { data: Float32Array; width: number; height: number } {
    return clipPixels(this.processor, image);
  }

  async imageFeatures(image: Raster): Promise<Float32Array> {
    const pixels = this.pixels(image);
    const input = inputInfo(this.vision.session)[0]!;
    const output = pickOutput(this.vision, 'image_embeds');
    const type = input.type === 'float16' ? 'float16' : 'float32';
    const out = (await this.vision.session.run({ [input.name]: floatTensor(type, pixels.data, [1, 3, pixels.height, pixels.width]) }, [output]))[output]!;
    return normalized(toFloat32(out));
  }

  /** One feature per term: clip.tokenize(truncate=True) (77 tokens, the last one the end token), padded. */
  async textFeatures(terms: readonly string[]): Promise<Float32Array[]> {
    const inputs = inputInfo(this.text.session);
    const idType = inputs.find((i) => i.name === 'input_ids')!.type === 'int32' ? 'int32' : 'int64';
    const mask = inputs.find((i) => i.name === 'attention_mask');
    const output = pickOutput(this.text, 'text_embeds');
    const features: Float32Array[] = [];
    for (let start = 0; start < terms.length; start += TEXT_BATCH) {
      const batch = terms.slice(start, start + TEXT_BATCH).map((t) => this.tokenizer.tokenize(t, { maxLength: CLIP_CONTEXT }));
      const dims = [batch.length, CLIP_CONTEXT];
      const feeds: Record<string, ort.Tensor> = { input_ids: intTensor(idType, batch.flatMap((b) => b.ids), dims) };
      if (mask) feeds[mask.name] = intTensor(mask.type === 'int32' ? 'int32' : 'int64', batch.flatMap((b) => b.attentionMask), dims);
      const out = toFloat32((await this.text.session.run(feeds, [output]))[output]!);
      const dim = out.length / batch.length;
      for (let i = 0; i < batch.length; i++) features.push(normalized(out.subarray(i * dim, (i + 1) * dim)));
    }
    return features;
  }

  /** The prompt's token count with the start and end tokens, for clip-interrogator's 77-token cut. */
  tokenCount(text: string): number {
    return this.tokenizer.encode(text).length + 2;
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.session.release(), this.text.session.release()]);
  }
}

function pickOutput(opened: OpenedSession, name: string): string {
  const outputs = outputInfo(opened.session);
  return (outputs.find((o) => o.name === name) ?? outputs[0]!).name;
}

/** features / features.norm(): float32 values, the norm taken in float64. */
function normalized(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return Float32Array.from(v, (x) => x / norm);
}
