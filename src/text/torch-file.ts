import { EmbeddingError } from './embedding-error.js';
import { HostValue, PickleObject, PickleTuple, readPickle, type PickleValue, type SafeGlobal } from './pickle-reader.js';
import { STORED_FLOAT_BYTES, decodeFloats, type FloatTensor, type StoredFloat } from './tensor-values.js';
import { ZipArchive } from './zip-archive.js';

/**
 * Reads a torch.save file (the zip format of PyTorch >= 1.6) into plain values and tensors
 * without executing it: `<name>/data.pkl` goes through the pickle reader with an allow-list of
 * exactly what torch writes for dense float tensors, and storages come from `<name>/data/<key>`.
 * Embeddings are read whole from memory (readTorchFile); checkpoints of gigabytes from disk,
 * each tensor only when asked for (openTorchCheckpoint).
 */

/** A tensor (or nn.Parameter) as the pickle returns it: dense float data in C order. */
export class TorchTensor extends HostValue implements FloatTensor {
  constructor(
    readonly shape: number[],
    readonly data: Float32Array,
    readonly dtype: StoredFloat,
  ) {
    super();
  }
}

/** Integer storages, which model checkpoints carry beside the weights (CLIP's position ids): listed, never decoded. */
export type StoredInteger = 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const INTEGER_BYTES: Record<StoredInteger, number> = { int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 };

function elementBytes(dtype: StoredFloat | StoredInteger): number {
  return dtype in STORED_FLOAT_BYTES ? STORED_FLOAT_BYTES[dtype as StoredFloat] : INTEGER_BYTES[dtype as StoredInteger];
}

function isFloat(dtype: StoredFloat | StoredInteger): dtype is StoredFloat {
  return dtype in STORED_FLOAT_BYTES;
}

/** A storage of the archive: its bytes are read only for the range a tensor spans. */
class Storage extends HostValue {
  constructor(
    readonly dtype: StoredFloat | StoredInteger,
    readonly numel: number,
    private readonly zip: ZipArchive,
    private readonly entry: string,
  ) {
    super();
  }

  values(begin: number, count: number): Float32Array {
    const dtype = this.dtype;
    if (!isFloat(dtype)) fail(`${this.entry} holds ${dtype} values, which are not read as weights`);
    const size = STORED_FLOAT_BYTES[dtype];
    return decodeFloats(this.zip.readRange(this.entry, begin * size, count * size), dtype, count);
  }
}

/** A tensor as saved: a view (offset, size, stride) of a storage, checked to lie inside it. */
export class TorchTensorRef extends HostValue {
  constructor(
    private readonly storage: Storage,
    private readonly offset: number,
    readonly shape: number[],
    private readonly stride: number[],
  ) {
    super();
  }

  get dtype(): StoredFloat | StoredInteger {
    return this.storage.dtype;
  }

  /** The values in C order: a saved view (slice, transpose) keeps its storage's layout. */
  read(): Float32Array {
    const count = this.shape.reduce((n, d) => n * d, 1);
    if (count === 0) return new Float32Array(0);
    const last = this.shape.reduce((end, d, i) => end + (d - 1) * this.stride[i]!, this.offset);
    const source = this.storage.values(this.offset, last - this.offset + 1);
    const out = new Float32Array(count);
    const index = new Array<number>(this.shape.length).fill(0);
    for (let i = 0; i < count; i++) {
      let at = 0;
      for (let d = 0; d < this.shape.length; d++) at += index[d]! * this.stride[d]!;
      out[i] = source[at]!;
      for (let d = this.shape.length - 1; d >= 0; d--) {
        if (++index[d]! < this.shape[d]!) break;
        index[d] = 0;
      }
    }
    return out;
  }
}

const STORAGE_TYPES: Readonly<Record<string, StoredFloat>> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
};

function fail(message: string): never {
  throw new EmbeddingError(`torch file: ${message}`);
}

function ints(value: PickleValue, what: string): number[] {
  if (!(value instanceof PickleTuple) || !value.items.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
    fail(`${what} is not a tuple of non-negative integers`);
  }
  return value.items as number[];
}

/** The most elements an expanded view (strides of 0) may claim beyond its storage: CLIP's expanded position_ids are 77. */
const MAX_EXPANDED = 2 ** 24;

/** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]). */
function rebuildTensor(args: readonly PickleValue[]): TorchTensorRef {
  const [storage, offset, sizeTuple, strideTuple] = args;
  if (!(storage instanceof Storage)) fail('_rebuild_tensor_v2 without a storage');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail('tensor storage offset is invalid');
  const shape = ints(sizeTuple!, 'tensor size');
  const stride = ints(strideTuple!, 'tensor stride');
  if (stride.length !== shape.length) fail('tensor size and stride differ in rank');
  const count = shape.reduce((n, d) => n * d, 1);
  const last = count === 0 ? offset : shape.reduce((end, d, i) => end + (d - 1) * stride[i]!, offset);
  if (count > 0 && last >= storage.numel) fail(`tensor reads element ${last} of a ${storage.numel}-element storage`);
  // Strides of 0 (an expanded view) let a few bytes claim any size: read is bounded by the file, or by 16M elements.
  if (count > Math.max(storage.numel, MAX_EXPANDED)) {
    fail(`a tensor of size [${shape.join(', ')}] repeats a ${storage.numel}-element storage (strides [${stride.join(', ')}]); expanded views are read up to ${MAX_EXPANDED} elements: re-save it with .contiguous() tensors or as .safetensors`);
  }
  return new TorchTensorRef(storage, offset, shape, stride);
}

function safeGlobal(qualifiedName: string, fields: Omit<SafeGlobal, 'qualifiedName'>): SafeGlobal {
  return { qualifiedName, ...fields };
}

/** Exactly the globals torch.save emits for dicts of dense float tensors and parameters; `tensor` makes what a tensor becomes. */
function allowList(tensor: (ref: TorchTensorRef) => PickleValue): SafeGlobal[] {
  const tensorArg = (args: readonly PickleValue[], what: string): PickleValue => {
    const t = args[0];
    if (!(t instanceof TorchTensorRef || t instanceof TorchTensor)) fail(`${what} of something other than a tensor`);
    return t;
  };
  return [
    safeGlobal('torch._utils._rebuild_tensor_v2', { call: (args) => tensor(rebuildTensor(args)) }),
    safeGlobal('torch._utils._rebuild_parameter', { call: (args) => tensorArg(args, '_rebuild_parameter') }),
    safeGlobal('torch._utils._rebuild_parameter_with_state', { call: (args) => tensorArg(args, '_rebuild_parameter_with_state') }),
    safeGlobal('collections.OrderedDict', {
      call: (args) => {
        if (args.length !== 0) fail('OrderedDict with constructor arguments');
        return new Map();
      },
    }),
    ...['builtins.set', '__builtin__.set'].map((name) =>
      safeGlobal(name, {
        call: (args) => {
          const items = args[0] ?? [];
          if (!Array.isArray(items)) fail('set() of something other than a list');
          return new Set(items);
        },
      }),
    ),
    // Embeddings saved by torch 1.11 hold an nn.ParameterDict: kept as an inert record of its state.
    safeGlobal('torch.nn.modules.container.ParameterDict', { construct: true }),
    ...Object.entries(STORAGE_TYPES).map(([name, dtype]) => safeGlobal(`torch.${name}`, { tag: dtype })),
  ];
}

/**
 * What PyTorch Lightning training checkpoints (SD 1.x's original .ckpt files) carry beside the
 * weights: the ModelCheckpoint callback's state, numpy scalars for its counters, integer buffers.
 * Each becomes an inert record that nothing reads; no Python object is ever created.
 */
const LIGHTNING_EXTRAS: SafeGlobal[] = [
  safeGlobal('pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint', { construct: true }),
  ...Object.entries({ LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool' }).map(
    ([name, dtype]) => safeGlobal(`torch.${name}`, { tag: dtype }),
  ),
  ...['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar', 'numpy.dtype', '_codecs.encode'].map((name) =>
    safeGlobal(name, { call: (args) => new PickleObject(name, args) }),
  ),
];

function readArchive(zip: ZipArchive, allowed: readonly SafeGlobal[]): PickleValue {
  const byName = new Map(allowed.map((g) => [g.qualifiedName, g]));
  const pickleName = zip.names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pickleName) fail('no <name>/data.pkl in the archive');
  const prefix = pickleName.slice(0, -'data.pkl'.length);
  const byteorder = zip.has(`${prefix}byteorder`) ? new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim() : 'little';
  if (byteorder !== 'little') fail(`byte order '${byteorder}' is not supported`);
  const storages = new Map<string, Storage>();
  return readPickle(zip.read(pickleName), {
    resolveGlobal: (module, name) => byName.get(`${module}.${name}`),
    persistentLoad(pid) {
      // ('storage', <torch.XStorage>, key, location, numel)
      const items = pid instanceof PickleTuple ? pid.items : [];
      const [kind, type, key, , numel] = items;
      const dtype = typeof type === 'object' && type !== null && 'tag' in type ? (type.tag as StoredFloat | StoredInteger | undefined) : undefined;
      if (kind !== 'storage' || !dtype || typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
        fail('unsupported persistent id (only tensor storages are read)');
      }
      let storage = storages.get(key);
      if (!storage) {
        const entry = `${prefix}data/${key}`;
        const size = zip.size(entry);
        if (size !== numel * elementBytes(dtype)) fail(`storage ${key} holds ${size} bytes, expected ${numel} x ${dtype}`);
        storage = new Storage(dtype, numel, zip, entry);
        storages.set(key, storage);
      }
      return storage;
    },
  });
}

/** Reads `bytes` (a whole torch.save file); tensors come back as TorchTensor, dicts as Map. */
export function readTorchFile(bytes: Uint8Array): PickleValue {
  if (bytes[0] === 0x80) fail('legacy (pre-1.6) torch format is not supported; re-save it with a recent PyTorch or convert it to .safetensors');
  return readArchive(new ZipArchive(bytes), allowList((ref) => new TorchTensor(ref.shape, ref.read(), ref.dtype as StoredFloat)));
}

export interface TorchCheckpoint {
  /** The unpickled value; its tensors are TorchTensorRef, read on demand. */
  value: PickleValue;
  close(): void;
}

/** Opens a torch.save checkpoint on disk; tensors stay on disk until read. */
export function openTorchCheckpoint(path: string): TorchCheckpoint {
  const zip = ZipArchive.open(path);
  try {
    return { value: readArchive(zip, [...allowList((ref) => ref), ...LIGHTNING_EXTRAS]), close: () => zip.close() };
  } catch (err) {
    zip.close();
    throw err;
  }
}
