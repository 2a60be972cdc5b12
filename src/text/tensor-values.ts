import { halfToFloat } from '../onnx/dtype.js';

/** The element types embedding files store, all widened to float32 on read. */
export type StoredFloat = 'float32' | 'float16' | 'bfloat16' | 'float64';

export const STORED_FLOAT_BYTES: Record<StoredFloat, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

/** float16 bits -> value, built on first use: decoding a checkpoint's billion halves one lookup each. */
let halfTable: Float32Array | undefined;

function halves(): Float32Array {
  halfTable ??= Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
  return halfTable;
}

/** Little-endian `count` values of `dtype` from `bytes` as float32 (bfloat16 is the high half of a float32). */
export function decodeFloats(bytes: Uint8Array, dtype: StoredFloat, count: number): Float32Array {
  // float32: the copy is the result (a fresh buffer, so aligned for a typed view; all targets are little-endian), one
  // copy where a second one cost a converted SD 1.5 another 4 GB of allocation and memcpy.
  if (dtype === 'float32' && bytes.length >= count * 4) return new Float32Array(bytes.slice(0, count * 4).buffer);
  const out = new Float32Array(count);
  switch (dtype) {
    case 'float32':
      // Fewer bytes than values: what there is, zeros after (a partial float is a RangeError), as ever.
      out.set(new Float32Array(bytes.slice(0, count * 4).buffer));
      break;
    case 'float16': {
      const table = halves();
      const bits = new Uint16Array(bytes.slice(0, count * 2).buffer);
      for (let i = 0; i < count; i++) out[i] = table[bits[i]!]!;
      break;
    }
    case 'bfloat16': {
      const bits = new Uint16Array(bytes.slice(0, count * 2).buffer);
      const wide = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) wide[i] = bits[i]! << 16;
      break;
    }
    case 'float64': {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    }
  }
  return out;
}

/** A dense tensor read from a file, values in C order. */
export interface FloatTensor {
  shape: number[];
  data: Float32Array;
  /** How the file stored it. */
  dtype: StoredFloat;
}
