import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Text features of a term list, kept on disk per list content (SHA-256) and text model: a real flavors list
 * is about 100k terms, minutes of CLIP on a CPU, and the same for every picture. A file holds count and
 * dimension (uint32 each) and the float32 features; one that does not fit is computed again and replaced.
 * Written to a temporary name and renamed, so a stopped run leaves no partial entry.
 */
export async function cachedFeatures(
  dir: string | undefined,
  key: { model: string; listSha256: string; count: number },
  compute: () => Promise<Float32Array[]>,
): Promise<Float32Array[]> {
  if (dir === undefined) return compute();
  const name = createHash('sha256').update(`${key.model}\n${key.listSha256}\n${key.count}`).digest('hex');
  const path = join(dir, `${name}.f32`);
  const hit = existsSync(path) ? readEntry(path, key.count) : undefined;
  if (hit) return hit;
  const features = await compute();
  const dim = features[0]?.length ?? 0;
  const bytes = Buffer.alloc(8 + features.length * dim * 4);
  bytes.writeUInt32LE(features.length, 0);
  bytes.writeUInt32LE(dim, 4);
  features.forEach((f, i) => Buffer.from(f.buffer, f.byteOffset, f.byteLength).copy(bytes, 8 + i * dim * 4));
  const temp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(temp, bytes);
    renameSync(temp, path);
  } catch {
    // the cache only saves time: a read-only or full disk costs the next run the encoding again
    rmSync(temp, { force: true });
  }
  return features;
}

function readEntry(path: string, count: number): Float32Array[] | undefined {
  const bytes = readFileSync(path);
  if (bytes.length < 8) return undefined;
  const n = bytes.readUInt32LE(0);
  const dim = bytes.readUInt32LE(4);
  if (n !== count || dim === 0 || bytes.length !== 8 + n * dim * 4) return undefined;
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8, bytes.byteOffset + bytes.length));
  return Array.from({ length: n }, (_, i) => all.subarray(i * dim, (i + 1) * dim));
}
