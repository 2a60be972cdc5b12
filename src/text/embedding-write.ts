/**
 * A textual-inversion embedding as a single-tensor safetensors file: `emb_params` [vectors, width]
 * float32 and string `__metadata__`. A1111 takes any single-tensor file (its embedding is named
 * after the file), ComfyUI reads `emb_params` by name, InvokeAI and diffusers'
 * load_textual_inversion take a one-tensor state dict (diffusers then needs `token=`, since the
 * key is not the token), and diffuse reads `emb_params` first (embeddings.ts).
 */

export const EMBEDDING_KEY = 'emb_params';

export function encodeEmbeddingSafetensors(vectors: Float32Array, count: number, width: number, metadata: Readonly<Record<string, string>>): Uint8Array {
  if (vectors.length !== count * width) throw new RangeError(`${vectors.length} values are not ${count} vectors of width ${width}`);
  const bytes = vectors.length * 4;
  const header = JSON.stringify({ __metadata__: metadata, [EMBEDDING_KEY]: { dtype: 'F32', shape: [count, width], data_offsets: [0, bytes] } });
  // The safetensors library pads the header with spaces so the data starts 8-byte aligned.
  const encoded = new TextEncoder().encode(header);
  const length = Math.ceil(encoded.length / 8) * 8;
  const out = new Uint8Array(8 + length + bytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(length), true);
  out.fill(0x20, 8, 8 + length);
  out.set(encoded, 8);
  const data = new DataView(out.buffer, 8 + length);
  vectors.forEach((v, i) => data.setFloat32(i * 4, v, true));
  return out;
}
