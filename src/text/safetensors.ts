import { EmbeddingError } from './embedding-error.js';
import { SafetensorsFormatError, parseSafetensorsHeader, safetensorsHeaderLength } from './safetensors-header.js';
import { decodeFloats, type FloatTensor, type StoredFloat } from './tensor-values.js';

/**
 * A whole safetensors file in memory (embeddings are a few kilobytes): the header validated by
 * safetensors-header.ts before any tensor is decoded, then every tensor widened to float32.
 */

const DTYPES: Readonly<Record<string, StoredFloat>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64' };

export interface SafetensorsFile {
  tensors: Map<string, FloatTensor>;
  metadata: Record<string, string>;
}

function fail(message: string): never {
  throw new EmbeddingError(`safetensors: ${message}`);
}

export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  let header;
  try {
    const length = safetensorsHeaderLength(bytes.subarray(0, 8), bytes.length);
    header = parseSafetensorsHeader(bytes.subarray(8, 8 + length), bytes.length);
  } catch (err) {
    if (err instanceof SafetensorsFormatError) fail(err.message);
    throw err;
  }
  const tensors = new Map<string, FloatTensor>();
  for (const { name, dtype, shape, begin, end } of header.entries.values()) {
    const type = DTYPES[dtype];
    if (!type) fail(`tensor '${name}' has dtype ${JSON.stringify(dtype)}; only F32, F16, BF16 and F64 are read`);
    const count = shape.reduce((n, d) => n * d, 1);
    tensors.set(name, { shape, dtype: type, data: decodeFloats(bytes.subarray(header.dataStart + begin, header.dataStart + end), type, count) });
  }
  return { tensors, metadata: header.metadata };
}
