import { halfToFloat } from '../onnx/dtype.js';

const bf16Bits = new Uint32Array(1);
const bf16Float = new Float32Array(bf16Bits.buffer);

/** The element types embedding files store, all widened to float32 on read. */
export type StoredFloat = 'float32' | 'float16' | 'bfloat16' | 'float64';

export const STORED_FLOAT_BYTES: Record<StoredFloat, number> = { float32: 4, float16: 2, bfloat16: 2, float64: 8 };

/** Little-endian `count` values of `dtype` from `bytes` as float32 (bfloat16 is the high half of a float32). */
export function decodeFloats(bytes: Uint8Array, dtype: StoredFloat, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case 'float32':
        out[i] = view.getFloat32(i * 4, true);
        break;
      case 'float64':
        out[i] = view.getFloat64(i * 8, true);
        break;
      case 'float16':
        out[i] = halfToFloat(view.getUint16(i * 2, true));
        break;
      case 'bfloat16':
        bf16Bits[0] = view.getUint16(i * 2, true) << 16;
        out[i] = bf16Float[0]!;
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
