import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { externalDataLocations } from '../onnx/initializers.js';
import { ModelProto } from '../onnx/proto.js';
import { cacheRoot } from '../models/index.js';
import { readCheckpointRecord } from '../graphs/model-folder.js';

const memo = new Map<string, Promise<string>>();

/**
 * A1111 records "Model hash" as the first 10 hex digits of the checkpoint's SHA-256. A diffusers
 * folder has no single checkpoint; the UNet is what makes a model itself, so its graph and the
 * weights it reads stand in: the SHA-256 of model.onnx followed by each external-data file in
 * the order the graph names them (a graph without external data hashes as model.onnx alone).
 * Two fine-tunes exported with one graph then differ, as their weights do. Hashing gigabytes takes
 * seconds, so results are kept in $DIFFUSE_HOME/hashes.json per file path, size and mtime.
 * A folder converted from a checkpoint records A1111's own hash of that file, the value A1111
 * and Civitai show for it; one converted from a diffusers folder records its UNet's hash, taken
 * while the conversion wrote it (re-reading full-size SD 1.5's UNet took 5.6-7.2 s of wall, 5.4-7.1 s of CPU).
 */
export function modelHash(dir: string): Promise<string> {
  let hash = memo.get(dir);
  if (!hash) {
    const record = readCheckpointRecord(dir);
    const known = record?.a1111Hash ?? record?.unetSha256?.slice(0, 10);
    hash = known ? Promise.resolve(known) : weightsHash(join(dir, 'unet', 'model.onnx')).then((h) => h.slice(0, 10));
    memo.set(dir, hash);
  }
  return hash;
}

/** SHA-256 (hex) of an ONNX graph and the external-data files it names, cached as modelHash's. */
export async function weightsHash(graph: string): Promise<string> {
  const bytes = readFileSync(graph);
  const files = [graph, ...externalDataLocations(ModelProto.decode(bytes).graph).map((l) => join(dirname(graph), l))];
  const key = files.map((f) => `${realpathSync(f)}:${statSync(f).size}:${statSync(f).mtimeMs}`).join('|');
  const cache = readCache();
  const known = cache[key];
  if (known) return known;
  const h = createHash('sha256');
  for (const file of files) await feed(h, file);
  const digest = h.digest('hex');
  writeCache({ ...readCache(), [key]: digest });
  return digest;
}

const cacheFile = (): string => join(cacheRoot(), 'hashes.json');

function readCache(): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(cacheFile(), 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** Best effort: a cache that cannot be written only costs the next run the hashing. */
function writeCache(entries: Record<string, string>): void {
  const file = cacheFile();
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, JSON.stringify(entries));
    renameSync(tmp, file);
  } catch {
    // read-only cache folder: hash again next time
  }
}

function feed(h: ReturnType<typeof createHash>, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(path)
      .on('data', (chunk) => h.update(chunk))
      .on('error', reject)
      .on('end', () => resolve());
  });
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await feed(h, path);
  return h.digest('hex');
}
