import { EmbeddingError } from './embedding-error.js';
import { STORED_FLOAT_BYTES, decodeFloats, type FloatTensor, type StoredFloat } from './tensor-values.js';

/**
 * A strict reader for the safetensors format: an 8-byte little-endian header length, a JSON
 * header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }, then the data.
 * Everything the header claims is checked against the bytes actually present before any
 * tensor is decoded, so a hostile header can neither make us allocate nor read out of bounds.
 */

/** The reference implementation refuses headers above 100 MB; embedding headers are a few hundred bytes. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;

const DTYPES: Readonly<Record<string, StoredFloat>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

export interface SafetensorsFile {
  tensors: Map<string, FloatTensor>;
  metadata: Record<string, string>;
}

function fail(message: string): never {
  throw new EmbeddingError(`safetensors: ${message}`);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for a header`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_SAFETENSORS_HEADER_BYTES, bytes.length - 8))) {
    fail(`header claims ${headerLength} bytes but the file has ${bytes.length - 8} after the length (truncated or not safetensors)`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch {
    fail('header is not valid UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, FloatTensor>();
  let metadata: Record<string, string> = {};
  const ranges: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = readMetadata(entry);
      continue;
    }
    if (typeof entry !== 'object' || entry === null) fail(`tensor '${name}' has no description`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    const type = typeof dtype === 'string' ? DTYPES[dtype] : undefined;
    if (!type) fail(`tensor '${name}' has dtype ${JSON.stringify(dtype)}; only F32, F16, BF16 and F64 are read`);
    if (!Array.isArray(shape) || !shape.every(isCount)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) fail(`tensor '${name}' has invalid data_offsets`);
    const [begin, end] = offsets as [number, number];
    const count = (shape as number[]).reduce((n, d) => n * d, 1);
    if (end < begin || end - begin !== count * STORED_FLOAT_BYTES[type]) {
      fail(`tensor '${name}' spans ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${count * STORED_FLOAT_BYTES[type]}`);
    }
    if (end > dataLength) fail(`tensor '${name}' ends at byte ${end} of a ${dataLength}-byte data section (truncated file?)`);
    ranges.push([begin, end, name]);
    tensors.set(name, { shape: [...(shape as number[])], dtype: type, data: decodeFloats(bytes.subarray(dataStart + begin, dataStart + end), type, count) });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] < ranges[i - 1]![1]) fail(`tensors '${ranges[i - 1]![2]}' and '${ranges[i]![2]}' overlap`);
  }
  return { tensors, metadata };
}

function readMetadata(entry: unknown): Record<string, string> {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('__metadata__ is not an object');
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string') fail(`__metadata__ value for '${key}' is not a string`);
    out[key] = value;
  }
  return out;
}
