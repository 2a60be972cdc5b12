import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { EmbeddingError } from '../text/embedding-error.js';
import { SafetensorsFile } from '../text/safetensors-file.js';
import { SafetensorsFormatError } from '../text/safetensors-header.js';
import { decodeFloats, type StoredFloat } from '../text/tensor-values.js';
import { TorchTensorRef, openTorchCheckpoint } from '../text/torch-file.js';
import { PickleObject } from '../text/pickle-reader.js';
import { CheckpointError } from './errors.js';
import type { TensorStore } from './weights.js';

/**
 * A weight file as a TensorStore: safetensors (validated as the reference library does) or a
 * torch.save archive (.ckpt/.pt/.bin: read by the pickle reader, which executes nothing and
 * rebuilds only allow-listed tensor records). Tensors are read one at a time, from disk.
 * Every problem is a CheckpointError naming the file.
 */

export interface OpenedStore extends TensorStore {
  close(): Promise<void>;
  /** The safetensors header's __metadata__ (empty for torch files). */
  readonly metadata: Record<string, string>;
}

const READ_DTYPES: Readonly<Record<string, StoredFloat>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };
/** torch storage types by safetensors' dtype names, for one vocabulary in messages. */
const TORCH_DTYPES: Readonly<Record<string, string>> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL' };

function refuseDtype(label: string, key: string, dtype: string): never {
  throw new CheckpointError(`${label}: tensor ${key} is ${dtype}; only F16, BF16 and F32 weights are read (re-save the checkpoint in one of those)`);
}

async function openSafetensors(path: string): Promise<OpenedStore> {
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(path);
  } catch (err) {
    if (err instanceof SafetensorsFormatError) {
      throw new CheckpointError(`${path} is not a valid safetensors file: ${err.message}; re-download it`, { cause: err });
    }
    throw err;
  }
  return {
    label: path,
    metadata: file.header.metadata,
    keys: () => file.header.entries.keys(),
    describe: (key) => file.entry(key),
    async read(key) {
      const entry = file.entry(key);
      if (!entry) throw new CheckpointError(`${path}: no tensor ${key}`);
      const dtype = READ_DTYPES[entry.dtype];
      if (!dtype) refuseDtype(path, key, entry.dtype);
      const count = entry.shape.reduce((n, d) => n * d, 1);
      const bytes = await file.bytes(entry);
      // This read's own buffer, the tensor exactly (the header's spans are checked): F32 is viewed, not copied again.
      return dtype === 'float32' ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : decodeFloats(bytes, dtype, count);
    },
    close: () => file.close(),
  };
}

/** The state dict of a torch checkpoint: `state_dict` of a training checkpoint, or the top-level dict. */
function stateDict(path: string, value: unknown): Map<string, TorchTensorRef> {
  const top = value instanceof Map ? value : undefined;
  const inner = top?.get('state_dict');
  const dict = inner instanceof Map ? inner : top;
  if (!dict) throw new CheckpointError(`${path} holds no dict of tensors (${value instanceof PickleObject ? value.className : typeof value}); it is not a model checkpoint`);
  const tensors = new Map<string, TorchTensorRef>();
  for (const [k, v] of dict) if (typeof k === 'string' && v instanceof TorchTensorRef) tensors.set(k, v);
  return tensors;
}

/** What to do about an archive that does not open: a pickle refused for its content says enough by itself. */
function archiveAdvice(message: string): string {
  return /^zip:|data\.pkl/.test(message) ? '; it is not a whole torch.save archive: re-download it, or pass the .safetensors' : '';
}

function openTorch(path: string): OpenedStore {
  let opened;
  try {
    opened = openTorchCheckpoint(path);
  } catch (err) {
    if (err instanceof EmbeddingError) throw new CheckpointError(`${path}: ${err.message}${archiveAdvice(err.message)}`, { cause: err });
    throw err;
  }
  const tensors = stateDict(path, opened.value);
  return {
    label: path,
    metadata: {},
    keys: () => tensors.keys(),
    describe(key) {
      const t = tensors.get(key);
      return t && { shape: t.shape, dtype: TORCH_DTYPES[t.dtype]! };
    },
    async read(key) {
      const t = tensors.get(key);
      if (!t) throw new CheckpointError(`${path}: no tensor ${key}`);
      const dtype = TORCH_DTYPES[t.dtype]!;
      if (!(dtype in READ_DTYPES)) refuseDtype(path, key, dtype);
      try {
        return t.read();
      } catch (err) {
        if (err instanceof EmbeddingError) throw new CheckpointError(`${path}: ${err.message}`, { cause: err });
        throw err;
      }
    },
    close: async () => opened.close(),
  };
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

/** Opens a weight file by what its bytes are (the extension only breaks ties for the message). */
export async function openWeightFile(path: string): Promise<OpenedStore> {
  const head = new Uint8Array(4);
  const handle = await open(path, 'r');
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if (ZIP_MAGIC.every((b, i) => head[i] === b)) return openTorch(path);
  // A legacy torch pickle opens with PROTO 2 and LONG1 (the magic number); a safetensors header length may start with 0x80 too.
  if (head[0] === 0x80 && head[1]! <= 5 && head[2] === 0x8a) {
    throw new CheckpointError(`${path} is a legacy (pre-1.6) torch pickle, which diffuse does not read; convert it to .safetensors (or re-save it with a recent PyTorch)`);
  }
  const ext = extname(path).toLowerCase();
  if (['.ckpt', '.pt', '.pth', '.bin'].includes(ext)) throw new CheckpointError(`${path} is not a torch.save archive (no zip signature); it may be damaged or truncated`);
  return openSafetensors(path);
}
