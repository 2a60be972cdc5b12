/**
 * A textual-inversion embedding as a single-tensor safetensors file: `emb_params` [vectors, width]
 * float32 and string `__metadata__`. A1111 takes any single-tensor file (its embedding is named
 * after the file), ComfyUI reads `emb_params` by name, InvokeAI and diffusers'
 * load_textual_inversion take a one-tensor state dict (diffusers then needs `token=`, since the
 * key is not the token), and diffuse reads `emb_params` first (embeddings.ts).
 */
import { encodeSafetensors } from './safetensors-write.js';

export const EMBEDDING_KEY = 'emb_params';

export function encodeEmbeddingSafetensors(vectors: Float32Array, count: number, width: number, metadata: Readonly<Record<string, string>>): Uint8Array {
  if (vectors.length !== count * width) throw new RangeError(`${vectors.length} values are not ${count} vectors of width ${width}`);
  const data = new Uint8Array(vectors.length * 4);
  const view = new DataView(data.buffer);
  vectors.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return encodeSafetensors([{ name: EMBEDDING_KEY, dtype: 'F32', shape: [count, width], data }], metadata);
}
