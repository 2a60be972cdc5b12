import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelLoadError } from '../../errors.js';

/**
 * A graph of an interrogator folder: `onnx/<name>.onnx` as transformers.js repos (Xenova/clip-vit-large-patch14)
 * keep them, `<name>.onnx` beside the configs, or `<name>/model.onnx` as diffuse's graph builder writes them;
 * missing, one line naming the folder and what it needs.
 */
export function interrogatorGraph(dir: string, name: string, role: string): string {
  for (const path of [join(dir, 'onnx', `${name}.onnx`), join(dir, `${name}.onnx`), join(dir, name, 'model.onnx')]) if (existsSync(path)) return path;
  throw new ModelLoadError(`${role} folder ${dir} has no onnx/${name}.onnx (see the README's img2txt section for the files it needs)`);
}

/** A JSON file the folder must have. */
export function interrogatorFile(dir: string, name: string, role: string): string {
  const path = join(dir, name);
  if (!existsSync(path)) throw new ModelLoadError(`${role} folder ${dir} has no ${name} (see the README's img2txt section for the files it needs)`);
  return path;
}
