import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * Hashes a file's bytes as they stream past: sha256 (what the Hub lists for LFS files and what
 * the manifest records) and, when the size is known up front, git's blob id
 * sha1("blob <size>\0" + bytes), which is the only checksum the Hub lists for small non-LFS files.
 */
export class ContentHasher {
  private readonly sha256: Hash = createHash('sha256');
  private readonly gitSha1: Hash;

  constructor(size: number) {
    this.gitSha1 = createHash('sha1').update(`blob ${size}\0`);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.gitSha1.update(chunk);
  }

  digest(): { sha256: string; gitOid: string } {
    return { sha256: this.sha256.digest('hex'), gitOid: this.gitSha1.digest('hex') };
  }
}

/** Feeds `path` (or its first `length` bytes) through `hasher`, reporting bytes as they go. */
export async function feedFile(path: string, hasher: ContentHasher, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<number> {
  let total = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal })) {
    const bytes = chunk as Buffer;
    hasher.update(bytes);
    total += bytes.length;
    onBytes?.(bytes.length);
  }
  return total;
}

export async function hashFile(path: string, size: number, onBytes?: (n: number) => void, signal?: AbortSignal): Promise<{ sha256: string; gitOid: string; size: number }> {
  const hasher = new ContentHasher(size);
  const read = await feedFile(path, hasher, onBytes, signal);
  return { ...hasher.digest(), size: read };
}
