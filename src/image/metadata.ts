// Which tool's generation metadata an image carries, decoded as far as we understand it.

import { InvalidExifError } from './exif/errors.js';
import { exifContainer, exifUserComment } from './exif/read.js';
import { openInputFile } from '../input-file.js';
import { type GenerationParameters, parseInfotext } from './infotext.js';
import { ImageInputError, InvalidPngError } from './errors.js';
import { MAX_PNG_FILE_BYTES, type PngTextChunk, pngTextRecord, readPngText, readPngTextFile } from './png-text.js';

/** A JPEG, WebP or AVIF is read whole for its EXIF; a picture diffuse reads is far smaller. */
const MAX_EXIF_FILE_BYTES = 256 * 2 ** 20;

export type GenerationMetadata =
  /** A1111-style "parameters" text (A1111, Forge, SD.Next, diffuse, many ComfyUI save nodes), or A1111's EXIF UserComment. */
  | { kind: 'a1111'; infotext: string; parameters: GenerationParameters }
  /**
   * ComfyUI's SaveImage: "prompt" is the executed API graph, "workflow" the editor graph, both JSON.
   * Graphs are not translated into parameters: their meaning depends on arbitrary node types.
   * A chunk that is not valid JSON is returned as its raw string.
   */
  | { kind: 'comfyui'; prompt: unknown; workflow: unknown }
  /** Text chunks exist but none we recognise (InvokeAI, NovelAI, plain comments, ...). */
  | { kind: 'unknown'; keywords: string[] }
  | { kind: 'none' };

function parseJsonOrRaw(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Classify a file's metadata. PNG: its text chunks, "parameters" winning when a file has both kinds.
 * JPEG, WebP, AVIF: the EXIF UserComment, as A1111's PNG Info reads it.
 */
export function readGenerationMetadata(file: Uint8Array): GenerationMetadata {
  const bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (exifContainer(bytes)) return fromExif(bytes);
  return classify(readPngText(bytes));
}

/**
 * The same for a file a user named (`info`, `--from`): a PNG's text chunks only are read, a JPEG,
 * WebP or AVIF whole up to MAX_EXIF_FILE_BYTES; a file that is missing, not a regular file or
 * malformed is an ImageInputError (exit 2) naming `label`.
 */
export function readGenerationMetadataFile(path: string, label: string): GenerationMetadata {
  try {
    const file = openInputFile(path, { label, maxBytes: MAX_PNG_FILE_BYTES });
    try {
      if (exifContainer(file.read(0, 12))) {
        if (file.size > MAX_EXIF_FILE_BYTES) throw new InvalidExifError(`the file is over ${MAX_EXIF_FILE_BYTES / 2 ** 20} MB, more than a picture's metadata needs`);
        return fromExif(file.read(0, file.size));
      }
    } finally {
      file.close();
    }
    return classify(readPngTextFile(path, { label }));
  } catch (err) {
    if (err instanceof InvalidPngError || err instanceof InvalidExifError) throw new ImageInputError(label, path, err.message, { cause: err });
    throw err;
  }
}

function fromExif(bytes: Buffer): GenerationMetadata {
  const comment = exifUserComment(bytes);
  return comment ? { kind: 'a1111', infotext: comment, parameters: parseInfotext(comment) } : { kind: 'none' };
}

function classify(chunks: readonly PngTextChunk[]): GenerationMetadata {
  const text = pngTextRecord(chunks);
  const infotext = text['parameters'];
  if (infotext !== undefined) return { kind: 'a1111', infotext, parameters: parseInfotext(infotext) };
  if (text['prompt'] !== undefined || text['workflow'] !== undefined) {
    return { kind: 'comfyui', prompt: parseJsonOrRaw(text['prompt']), workflow: parseJsonOrRaw(text['workflow']) };
  }
  const keywords = Object.keys(text);
  return keywords.length > 0 ? { kind: 'unknown', keywords } : { kind: 'none' };
}
