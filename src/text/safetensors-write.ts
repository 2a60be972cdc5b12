/** One tensor of a safetensors file to write: its little-endian bytes, as the file stores them. */
export interface SafetensorsTensorBytes {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/**
 * A safetensors file as the safetensors library writes it: compact JSON header (metadata first,
 * then the tensors in the order given) padded with spaces so the data starts 8-byte aligned, then
 * the tensors' bytes back to back.
 */
export function encodeSafetensors(tensors: readonly SafetensorsTensorBytes[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  const encoded = new TextEncoder().encode(JSON.stringify(header));
  const length = Math.ceil(encoded.length / 8) * 8;
  const out = new Uint8Array(8 + length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(length), true);
  out.fill(0x20, 8, 8 + length);
  out.set(encoded, 8);
  let at = 8 + length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}
