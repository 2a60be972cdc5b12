import { EmbeddingError } from './embedding-error.js';
import { HostValue, PickleTuple, readPickle, type PickleValue, type SafeGlobal } from './pickle-reader.js';
import { STORED_FLOAT_BYTES, decodeFloats, type FloatTensor, type StoredFloat } from './tensor-values.js';
import { ZipArchive } from './zip-archive.js';

/**
 * Reads a torch.save file (the zip format of PyTorch >= 1.6) into plain values and tensors
 * without executing it: `<name>/data.pkl` goes through the pickle reader with an allow-list of
 * exactly what torch writes for dense float tensors, and storages come from `<name>/data/<key>`.
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

class Storage extends HostValue {
  constructor(
    readonly dtype: StoredFloat,
    readonly data: Float32Array,
  ) {
    super();
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

/** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks[, metadata]). */
function rebuildTensor(args: readonly PickleValue[]): TorchTensor {
  const [storage, offset, sizeTuple, strideTuple] = args;
  if (!(storage instanceof Storage)) fail('_rebuild_tensor_v2 without a storage');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail('tensor storage offset is invalid');
  const shape = ints(sizeTuple!, 'tensor size');
  const stride = ints(strideTuple!, 'tensor stride');
  if (stride.length !== shape.length) fail('tensor size and stride differ in rank');
  const { data: source, dtype } = storage;
  const count = shape.reduce((n, d) => n * d, 1);
  const last = count === 0 ? offset : shape.reduce((end, d, i) => end + (d - 1) * stride[i]!, offset);
  if (count > 0 && last >= source.length) fail(`tensor reads element ${last} of a ${source.length}-element storage`);
  // Gather into C order: a saved view (slice, transpose) keeps its storage's layout.
  const out = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < count; i++) {
    let at = offset;
    for (let d = 0; d < shape.length; d++) at += index[d]! * stride[d]!;
    out[i] = source[at]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) break;
      index[d] = 0;
    }
  }
  return new TorchTensor(shape, out, dtype);
}

function tensorArg(args: readonly PickleValue[], what: string): TorchTensor {
  const t = args[0];
  if (!(t instanceof TorchTensor)) fail(`${what} of something other than a tensor`);
  return t;
}

function safeGlobal(qualifiedName: string, fields: Omit<SafeGlobal, 'qualifiedName'>): SafeGlobal {
  return { qualifiedName, ...fields };
}

/** Exactly the globals torch.save emits for dicts of dense float tensors and parameters. */
const ALLOWED: ReadonlyMap<string, SafeGlobal> = new Map(
  [
    safeGlobal('torch._utils._rebuild_tensor_v2', { call: rebuildTensor }),
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
  ].map((g) => [g.qualifiedName, g]),
);

/** Reads `bytes` (a whole torch.save file); tensors come back as TorchTensor, dicts as Map. */
export function readTorchFile(bytes: Uint8Array): PickleValue {
  if (bytes[0] === 0x80) fail('legacy (pre-1.6) torch format is not supported; re-save it with a recent PyTorch or convert it to .safetensors');
  const zip = new ZipArchive(bytes);
  const pickleName = zip.names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pickleName) fail('no <name>/data.pkl in the archive');
  const prefix = pickleName.slice(0, -'data.pkl'.length);
  const byteorder = zip.has(`${prefix}byteorder`) ? new TextDecoder().decode(zip.read(`${prefix}byteorder`)).trim() : 'little';
  if (byteorder !== 'little') fail(`byte order '${byteorder}' is not supported`);
  const storages = new Map<string, Storage>();
  return readPickle(zip.read(pickleName), {
    resolveGlobal: (module, name) => ALLOWED.get(`${module}.${name}`),
    persistentLoad(pid) {
      // ('storage', <torch.XStorage>, key, location, numel)
      const items = pid instanceof PickleTuple ? pid.items : [];
      const [kind, type, key, , numel] = items;
      const dtype = typeof type === 'object' && type !== null && 'tag' in type ? (type.tag as StoredFloat | undefined) : undefined;
      if (kind !== 'storage' || !dtype || typeof key !== 'string' || typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
        fail('unsupported persistent id (only float storages are read)');
      }
      let storage = storages.get(key);
      if (!storage) {
        const raw = zip.read(`${prefix}data/${key}`);
        if (raw.length !== numel * STORED_FLOAT_BYTES[dtype]) fail(`storage ${key} holds ${raw.length} bytes, expected ${numel} x ${dtype}`);
        storage = new Storage(dtype, decodeFloats(raw, dtype, numel));
        storages.set(key, storage);
      }
      return storage;
    },
  });
}
