import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * A checkpoint's identities as AUTOMATIC1111 writes them into an image's parameters: "Model hash"
 * is the first 10 hex digits of the file's SHA-256 (modules/hashes.py), and its older hash the
 * first 8 of the SHA-256 of the 64 KiB at offset 1 MiB (sd_models.model_hash), which older
 * infotexts and model sites still show. The full SHA-256 also keys the conversion cache.
 */

export interface CheckpointHashes {
  sha256: string;
  a1111Hash: string;
  a1111OldHash: string;
}

const OLD_HASH_OFFSET = 0x100000;
const OLD_HASH_LENGTH = 0x10000;

/** Streams the file once; `onBytes` hears each chunk's size (progress for multi-gigabyte files). */
export async function hashCheckpoint(path: string, onBytes?: (bytes: number) => void): Promise<CheckpointHashes> {
  const full = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    createReadStream(path, { highWaterMark: 1 << 22 })
      .on('data', (chunk: string | Buffer) => {
        full.update(chunk);
        onBytes?.(chunk.length);
      })
      .on('error', reject)
      .on('end', () => resolve());
  });
  const sha256 = full.digest('hex');
  return { sha256, a1111Hash: sha256.slice(0, 10), a1111OldHash: await oldHash(path) };
}

/** A1111 reads at most 64 KiB there; a smaller file gives fewer (or no) bytes, hashed all the same. */
async function oldHash(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(OLD_HASH_LENGTH);
    const { bytesRead } = await handle.read(buffer, 0, OLD_HASH_LENGTH, OLD_HASH_OFFSET);
    return createHash('sha256').update(buffer.subarray(0, bytesRead)).digest('hex').slice(0, 8);
  } finally {
    await handle.close();
  }
}
