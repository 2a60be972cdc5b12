import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recordSource } from '../onnx/derived-source.js';
import { openWeightFile } from './checkpoint-store.js';
import { checkpointHashes } from './converted-cache.js';
import { assembleFolder, cachedConversion, writeGraph } from './converted-folder.js';
import { buildHed } from './hed.js';
import { buildLineart } from './lineart.js';
import { buildLineartAnime } from './lineart-anime.js';
import { buildMlsd } from './mlsd.js';
import { buildOpenpose } from './openpose.js';
import { buildHandFace } from './openpose-hand-face.js';
import { buildPidinet } from './pidinet.js';
import type { GraphBuilder } from './onnx-builder.js';
import type { TensorStore } from './weights.js';

/**
 * `detector=<file>`: a ControlNet preprocessor's network (HED's ControlNetHED.pth, lineart's
 * sk_model.pth, OpenPose's body_pose_model.pth, PiDiNet's table5_pidinet.pth,
 * lineart_anime's netG.pth, M-LSD's mlsd_large_512_fp32.pth, OpenPose's hand_pose_model.pth and facenet.pth; or the same state dict as .safetensors) built once into
 * `<cacheDir>/<kind>-<sha256 of the file>/<kind>/model.onnx`, with detector.json saying which builder made it.
 */

export type DetectorKind = 'hed' | 'lineart' | 'lineart-anime' | 'mlsd' | 'openpose' | 'openpose-hand' | 'openpose-face' | 'pidinet';

const BUILDERS: Readonly<Record<DetectorKind, (store: TensorStore) => GraphBuilder>> = {
  hed: buildHed,
  lineart: buildLineart,
  'lineart-anime': buildLineartAnime,
  mlsd: buildMlsd,
  openpose: buildOpenpose,
  'openpose-hand': (store) => buildHandFace('openpose-hand', store),
  'openpose-face': (store) => buildHandFace('openpose-face', store),
  pidinet: buildPidinet,
};
const RECORD = 'detector.json';
/** Bumped when a builder changes the graph a weight file converts to. */
const DETECTOR_CONVERTER_VERSION = 1;

function isCurrent(dir: string, kind: DetectorKind): boolean {
  try {
    const record = JSON.parse(readFileSync(join(dir, RECORD), 'utf8')) as { kind?: unknown; converter?: unknown };
    return record.kind === kind && record.converter === DETECTOR_CONVERTER_VERSION;
  } catch {
    return false;
  }
}

/** The ONNX graph of the `kind` network whose weights are the file at `path`, building it first when the cache has none. */
export async function ensureConvertedDetector(kind: DetectorKind, path: string, cacheDir: string): Promise<string> {
  const { sha256 } = await checkpointHashes(path, cacheDir);
  const dir = join(cacheDir, `${kind}-${sha256.slice(0, 16)}`);
  await cachedConversion(dir, (d) => isCurrent(d, kind), async (out) => {
    const store = await openWeightFile(path);
    try {
      const graph = BUILDERS[kind](store);
      await assembleFolder(out, async (tmp) => {
        await writeGraph(graph, tmp, kind, `${kind} network`);
        await writeFile(join(tmp, RECORD), `${JSON.stringify({ kind, sha256, converter: DETECTOR_CONVERTER_VERSION }, null, 2)}\n`);
        recordSource(tmp, path);
      });
    } finally {
      await store.close();
    }
  });
  return join(dir, kind, 'model.onnx');
}
