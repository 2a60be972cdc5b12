// Which tool's generation metadata an image carries, decoded as far as we understand it.

import { exifContainer, exifUserComment } from './exif/read.js';
import { type GenerationParameters, parseInfotext } from './infotext.js';
import { pngTextRecord, readPngText } from './png-text.js';

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
  if (exifContainer(bytes)) {
    const comment = exifUserComment(bytes);
    return comment ? { kind: 'a1111', infotext: comment, parameters: parseInfotext(comment) } : { kind: 'none' };
  }
  const text = pngTextRecord(readPngText(bytes));
  const infotext = text['parameters'];
  if (infotext !== undefined) return { kind: 'a1111', infotext, parameters: parseInfotext(infotext) };
  if (text['prompt'] !== undefined || text['workflow'] !== undefined) {
    return { kind: 'comfyui', prompt: parseJsonOrRaw(text['prompt']), workflow: parseJsonOrRaw(text['workflow']) };
  }
  const keywords = Object.keys(text);
  return keywords.length > 0 ? { kind: 'unknown', keywords } : { kind: 'none' };
}
