import { HubNotFoundError } from './errors.js';
import type { RemoteFile } from './manifest.js';
import { globToRegExp } from './registry.js';

/**
 * Which of a repo's files a pull needs: model_index.json at the root, plus, in each component
 * folder, the files whose basename matches an include glob (ONNX graphs, external weights,
 * configs, tokenizer files; never the PyTorch copies that often sit beside them).
 */
export interface Selection {
  components: readonly string[];
  /** Taken when the repo has them, not required (SDXL's second text encoder). */
  optional?: readonly string[];
  include: readonly string[];
  /** Take every listed file instead (debugging a repo layout). */
  all?: boolean;
}

export const MODEL_INDEX = 'model_index.json';

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Exactly the named files (a registry VAE's), or a HubNotFoundError naming one the repo lacks. */
export function selectExact(files: readonly RemoteFile[], paths: readonly string[], what: string): RemoteFile[] {
  return paths.map((path) => {
    const file = files.find((f) => f.path === path);
    if (!file) throw new HubNotFoundError(`${what} has no ${path}`);
    return file;
  });
}

/** The selected files, or a HubNotFoundError naming a component the repo lacks. */
export function selectFiles(files: readonly RemoteFile[], selection: Selection, what: string): RemoteFile[] {
  if (selection.all) return [...files];
  const include = selection.include.map(globToRegExp);
  const wanted = (f: RemoteFile): boolean => include.some((re) => re.test(basename(f.path)));
  const chosen: RemoteFile[] = [];
  const index = files.find((f) => f.path === MODEL_INDEX);
  if (!index) throw new HubNotFoundError(`${what} has no ${MODEL_INDEX}: not a diffusers model repo`);
  chosen.push(index);
  for (const component of selection.components) {
    const prefix = `${component}/`;
    const inside = files.filter((f) => f.path.startsWith(prefix) && wanted(f));
    if (inside.length === 0) throw new HubNotFoundError(`${what} has no ${component}/ files of the kinds diffuse uses (${selection.include.join(', ')})`);
    chosen.push(...inside);
  }
  for (const component of selection.optional ?? []) {
    chosen.push(...files.filter((f) => f.path.startsWith(`${component}/`) && wanted(f)));
  }
  return chosen;
}
