import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';

const memo = new Map<string, Promise<string>>();

/**
 * A1111 records "Model hash" as the first 10 hex digits of the checkpoint's SHA-256. A diffusers
 * folder has no single checkpoint; the UNet graph is what makes a model itself, so its
 * model.onnx stands in.
 */
export function modelHash(dir: string): Promise<string> {
  let hash = memo.get(dir);
  if (!hash) {
    hash = sha256File(join(dir, 'unet', 'model.onnx')).then((h) => h.slice(0, 10));
    memo.set(dir, hash);
  }
  return hash;
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => h.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
