import { cachedModelEditAsync } from '../onnx/edited-model-cache.js';
import { winogradConvs } from '../onnx/winograd-conv.js';

export const CONV_ALGORITHMS = ['winograd', 'direct'] as const;
export type ConvAlgorithm = (typeof CONV_ALGORITHMS)[number];

/** Bumped when the rewrite changes, so cached graphs of an older one are not reused. */
const WINOGRAD_VERSION = 1;
const DATA_FILE = 'winograd.onnx_data';

/**
 * A graph with its 3x3 stride-1 convolutions as Winograd F(2x2, 3x3), rewritten once per source
 * and cached beside links to its weights, the transformed weights in a file of their own.
 */
export async function winogradGraph(source: string, cacheDir: string, label: string): Promise<string> {
  const edited = await cachedModelEditAsync({
    source,
    cacheDir,
    label: `${label}-winograd`,
    editKey: { winograd: WINOGRAD_VERSION },
    edit: async (model, sourceDir, staging) => winogradConvs(model, sourceDir, { file: DATA_FILE, staging }),
  });
  return edited.path;
}
