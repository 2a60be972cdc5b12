import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { TrainInputError } from './errors.js';

/**
 * The prompts a training image is captioned with. Built in: diffusers' textual_inversion.py
 * lists (imagenet_templates_small for objects, imagenet_style_templates_small for styles), where
 * `{}` stands for the placeholder. A template file is A1111's format: one template per line,
 * `[name]` for the placeholder and `[filewords]` for the image's caption; `{}` is read too.
 */

export type TemplateSet = 'object' | 'style';

export const OBJECT_TEMPLATES: readonly string[] = [
  'a photo of a {}', 'a rendering of a {}', 'a cropped photo of the {}', 'the photo of a {}', 'a photo of a clean {}',
  'a photo of a dirty {}', 'a dark photo of the {}', 'a photo of my {}', 'a photo of the cool {}', 'a close-up photo of a {}',
  'a bright photo of the {}', 'a cropped photo of a {}', 'a photo of the {}', 'a good photo of the {}', 'a photo of one {}',
  'a close-up photo of the {}', 'a rendition of the {}', 'a photo of the clean {}', 'a rendition of a {}', 'a photo of a nice {}',
  'a good photo of a {}', 'a photo of the nice {}', 'a photo of the small {}', 'a photo of the weird {}', 'a photo of the large {}',
  'a photo of a cool {}', 'a photo of a small {}',
];

export const STYLE_TEMPLATES: readonly string[] = [
  'a painting in the style of {}', 'a rendering in the style of {}', 'a cropped painting in the style of {}', 'the painting in the style of {}',
  'a clean painting in the style of {}', 'a dirty painting in the style of {}', 'a dark painting in the style of {}', 'a picture in the style of {}',
  'a cool painting in the style of {}', 'a close-up painting in the style of {}', 'a bright painting in the style of {}',
  'a cropped painting in the style of {}', 'a good painting in the style of {}', 'a close-up painting in the style of {}',
  'a rendition in the style of {}', 'a nice painting in the style of {}', 'a small painting in the style of {}',
  'a weird painting in the style of {}', 'a large painting in the style of {}',
];

/** The marker a template's placeholder becomes before tokenising (never produced by the tokenizer's text). */
export const PLACEHOLDER = '\u0000';

export function builtInTemplates(set: TemplateSet): readonly string[] {
  return set === 'style' ? STYLE_TEMPLATES : OBJECT_TEMPLATES;
}

export function readTemplateFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TrainInputError(`--template-file: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  if (lines.length === 0) throw new TrainInputError(`--template-file: ${path} has no templates (one per line, [name] for the token)`);
  const unnamed = lines.find((l) => !l.includes('[name]') && !l.includes('{}'));
  if (unnamed) throw new TrainInputError(`--template-file: the template '${unnamed}' has no [name] (or {}) where the token goes`);
  return lines;
}

/** A template with the placeholder marked and [filewords] filled in. */
export function fillTemplate(template: string, filewords: string): string {
  return template.replaceAll('[name]', PLACEHOLDER).replaceAll('{}', PLACEHOLDER).replaceAll('[filewords]', filewords);
}

/**
 * An image's caption for [filewords], as A1111 reads it: the .txt file beside the image when there
 * is one, else the file name without its extension and without leading digits and dashes.
 */
export function captionFor(imagePath: string): string {
  const txt = imagePath.slice(0, imagePath.length - extname(imagePath).length) + '.txt';
  try {
    return readFileSync(txt, 'utf8').trim();
  } catch {
    return basename(imagePath, extname(imagePath)).replace(/^[-\d]+\s*/, '');
  }
}
