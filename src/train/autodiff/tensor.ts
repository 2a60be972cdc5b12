import { TENSOR, rawInitializer } from '../../onnx/initializers.js';
import { varintValues } from '../../onnx/node-builders.js';
import { ElemType, type Message } from '../../onnx/proto.js';

/**
 * Small tensors known while the graph is built: shape arithmetic, folded constants, attribute
 * values. Values are plain numbers (int64 beyond 2^53 only appears as Slice's "to the end"
 * sentinels, which stay sentinels after rounding); float32 values are kept float32-rounded.
 */
export interface ConstTensor {
  elemType: number;
  dims: number[];
  data: number[];
}

/** TensorProto.DataType values beyond those src/onnx names. */
export const DataType = { ...ElemType, BOOL: 9, UINT64: 13, UINT32: 12, INT16: 5, UINT16: 4, BFLOAT16: 16 } as const;

export const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.DOUBLE, DataType.FLOAT16, DataType.BFLOAT16]);
/** The floating types gradients are computed in. */
export const DIFFERENTIABLE_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.DOUBLE]);

const TENSOR_INT32_DATA = 5;
const TENSOR_INT64_DATA = 7;
const TENSOR_DOUBLE_DATA = 10;

export const numel = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

/** Rounds a value the way storing it in a tensor of `elemType` does. */
export function roundTo(elemType: number, v: number): number {
  switch (elemType) {
    case DataType.FLOAT:
      return Math.fround(v);
    case DataType.BOOL:
      return v ? 1 : 0;
    case DataType.DOUBLE:
      return v;
    default:
      // Integer types: C++ float->int conversion truncates toward zero.
      return Number.isFinite(v) ? Math.trunc(v) : v;
  }
}

function fixed(bytes: Uint8Array, size: number, read: (view: DataView, at: number) => number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / size }, (_, i) => read(view, i * size));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((pos, p) => (out.set(p, pos), pos + p.length), 0);
  return out;
}

function decodeRaw(elemType: number, raw: Uint8Array): number[] | undefined {
  switch (elemType) {
    case DataType.FLOAT:
      return fixed(raw, 4, (v, i) => v.getFloat32(i, true));
    case DataType.DOUBLE:
      return fixed(raw, 8, (v, i) => v.getFloat64(i, true));
    case DataType.INT64:
      return fixed(raw, 8, (v, i) => Number(v.getBigInt64(i, true)));
    case DataType.INT32:
      return fixed(raw, 4, (v, i) => v.getInt32(i, true));
    case DataType.UINT8:
    case DataType.BOOL:
      return Array.from(raw);
    case DataType.INT8:
      return fixed(raw, 1, (v, i) => v.getInt8(i));
    default:
      return undefined;
  }
}

/**
 * The values of a TensorProto stored in the model itself (raw_data or the typed fields), or
 * undefined for external data, unusual types, or more than `maxElements` values.
 */
export function decodeTensor(msg: Message, maxElements: number): ConstTensor | undefined {
  const dims = varintValues(msg.all(TENSOR.dims));
  const elemType = Number(msg.int(TENSOR.dataType) ?? 0n);
  if (numel(dims) > maxElements || Number(msg.int(TENSOR.dataLocation) ?? 0n) === 1) return undefined;
  const raw = msg.first(TENSOR.rawData)?.data;
  let data: number[] | undefined;
  if (raw) data = decodeRaw(elemType, raw);
  else if (elemType === DataType.FLOAT) data = decodeRaw(elemType, concat(msg.all(TENSOR.floatData).map((f) => f.data)));
  else if (elemType === DataType.DOUBLE) data = decodeRaw(elemType, concat(msg.all(TENSOR_DOUBLE_DATA).map((f) => f.data)));
  else if (elemType === DataType.INT64) data = varintValues(msg.all(TENSOR_INT64_DATA));
  else if ([DataType.INT32, DataType.BOOL, DataType.UINT8, DataType.INT8].includes(elemType as 6)) data = varintValues(msg.all(TENSOR_INT32_DATA));
  if (!data || data.length !== numel(dims)) return undefined;
  return { elemType, dims, data };
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

function encodeRaw(t: ConstTensor): Uint8Array {
  const n = t.data.length;
  switch (t.elemType) {
    case DataType.FLOAT:
      return new Uint8Array(Float32Array.from(t.data).buffer);
    case DataType.DOUBLE:
      return new Uint8Array(Float64Array.from(t.data).buffer);
    case DataType.INT64: {
      const view = new DataView(new ArrayBuffer(n * 8));
      t.data.forEach((v, i) => {
        // Rounded int64 sentinels (2^63 as a double) are clamped back into range.
        const big = BigInt(Math.trunc(v));
        view.setBigInt64(i * 8, big > INT64_MAX ? INT64_MAX : big < INT64_MIN ? INT64_MIN : big, true);
      });
      return new Uint8Array(view.buffer);
    }
    case DataType.INT32:
      return new Uint8Array(Int32Array.from(t.data).buffer);
    case DataType.BOOL:
    case DataType.UINT8:
      return Uint8Array.from(t.data);
    case DataType.INT8:
      return new Uint8Array(Int8Array.from(t.data).buffer);
    default:
      throw new Error(`cannot encode a constant of element type ${t.elemType}`);
  }
}

/** A TensorProto (initialiser or attribute value) holding `t`. */
export function encodeTensor(name: string, t: ConstTensor): Message {
  return rawInitializer(name, t.elemType, t.dims, encodeRaw(t));
}
