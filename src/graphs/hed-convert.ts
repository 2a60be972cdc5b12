import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recordSource } from '../onnx/derived-source.js';
import { openWeightFile } from './checkpoint-store.js';
import { checkpointHashes } from './converted-cache.js';
import { assembleFolder, cachedConversion, writeGraph } from './converted-folder.js';
import { buildHed } from './hed.js';

/**
 * `detector=ControlNetHED.pth` (or the same state dict as .safetensors): the HED network built once
 * into `<cacheDir>/hed-<sha256 of the file>/hed/model.onnx`, with hed.json saying which builder made it.
 */

export const HED_RECORD = 'hed.json';
/** Bumped when buildHed changes the graph a weight file converts to. */
const HED_CONVERTER_VERSION = 1;

function isCurrent(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, HED_RECORD), 'utf8')) as { converter?: unknown }).converter === HED_CONVERTER_VERSION;
  } catch {
    return false;
  }
}

/** The folder holding hed/model.onnx for the weight file at `path`, building it first when the cache has none. */
export async function ensureConvertedHed(path: string, cacheDir: string): Promise<string> {
  const { sha256 } = await checkpointHashes(path, cacheDir);
  const dir = join(cacheDir, `hed-${sha256.slice(0, 16)}`);
  return cachedConversion(dir, isCurrent, async (out) => {
    const store = await openWeightFile(path);
    try {
      const graph = buildHed(store);
      await assembleFolder(out, async (tmp) => {
        await writeGraph(graph, tmp, 'hed', 'HED network');
        await writeFile(join(tmp, HED_RECORD), `${JSON.stringify({ sha256, converter: HED_CONVERTER_VERSION }, null, 2)}\n`);
        recordSource(tmp, path);
      });
    } finally {
      await store.close();
    }
  });
}
