import type { Hash } from 'node:crypto';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { floatToHalf } from '../onnx/dtype.js';
import { ConversionError } from './errors.js';
import { DATA_LOCATION_EXTERNAL, TENSOR, rawInitializer } from '../onnx/initializers.js';
import { ElemType, Message, intField, messageField, stringField } from '../onnx/proto.js';
import { floatAttribute, intAttribute, intsAttribute, makeNode, stringAttribute } from '../onnx/node-builders.js';

/**
 * Builds an ONNX model from nothing: nodes named after the torch modules they come from (as
 * torch.onnx names them, `/down_blocks.0/resnets.1/conv1/Conv`), small constants inline, and the
 * weights as external data written one tensor at a time, so a model of gigabytes never sits in
 * memory. Weights are stored as float32, or as float16 with a Cast to float32 after each (ONNX
 * Runtime folds those casts when it loads the graph): half the disk, the same float32 compute.
 */

export type Dim = number | string;
export type AttributeValue = number | number[] | string | { float: number };
export type WeightType = 'float32' | 'float16';

export interface WriteOptions {
  /** Hears each tensor's stored bytes (progress). */
  onWeight?: (bytes: number) => void;
  /** Fed the bytes of model.onnx then of the data file, so their SHA-256 needs no second read. */
  hash?: Hash;
}

/** A weight whose values are read only when the model is written. */
export interface PendingWeight {
  name: string;
  dims: number[];
  read(): Promise<Float32Array>;
}

// onnx.proto field numbers (onnx 1.17) of what this file writes.
const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const OPSET = { domain: 1, version: 2 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIMENSION = { dimValue: 1, dimParam: 2 } as const;
const ENTRY = { key: 1, value: 2 } as const;

/** Opset 17: LayerNormalization is a standard op from there; IR 8 is its IR version. */
const OPSET_VERSION = 17;
const IR_VERSION = 8;
/** Tensors of a megabyte or more start on a page, as onnx's own writer aligns them (small ones are packed). */
const DATA_ALIGNMENT = 4096;
const ALIGN_FROM_BYTES = 1 << 20;

function attribute(name: string, value: AttributeValue): Message {
  if (typeof value === 'number') return intAttribute(name, value);
  if (typeof value === 'string') return stringAttribute(name, value);
  if (Array.isArray(value)) return intsAttribute(name, value);
  return floatAttribute(name, value.float);
}

function valueInfo(name: string, elemType: number, dims: readonly Dim[]): Message {
  const shape = new Message(dims.map((d) => messageField(SHAPE.dim, new Message([typeof d === 'number' ? intField(DIMENSION.dimValue, d) : stringField(DIMENSION.dimParam, d)]))));
  const tensorType = new Message([intField(TENSOR_TYPE.elemType, elemType), messageField(TENSOR_TYPE.shape, shape)]);
  return new Message([stringField(VALUE_INFO.name, name), messageField(VALUE_INFO.type, new Message([messageField(TYPE.tensorType, tensorType)]))]);
}

function float32Bytes(values: readonly number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

export class GraphBuilder {
  private readonly nodes: Message[] = [];
  private readonly constants: Message[] = [];
  private readonly inputs: Message[] = [];
  private readonly outputs: Message[] = [];
  private readonly constantNames = new Map<string, string>();
  private readonly nodeNames = new Set<string>();
  readonly weights: PendingWeight[] = [];

  constructor(
    readonly name: string,
    readonly weightType: WeightType,
  ) {}

  input(name: string, elemType: number, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares `value` as the graph output `name` (through an Identity when the names differ). */
  output(value: string, name: string, elemType: number, dims: readonly Dim[]): void {
    if (value !== name) this.op('Identity', [value], `/${name}`, {}, name);
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /**
   * One node; `scope` is its module path in torch.onnx's spelling. Returns its outputs, named
   * `<node name>_output_<i>` unless `outputName` names the single output.
   */
  node(opType: string, inputs: readonly string[], scope: string, attributes: Record<string, AttributeValue> = {}, outputs = 1): string[] {
    const name = this.uniqueName(`${scope}/${opType}`);
    const outs = Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`);
    this.nodes.push(makeNode(opType, name, inputs, outs, Object.entries(attributes).map(([k, v]) => attribute(k, v))));
    return outs;
  }

  /** A node with one output. */
  op(opType: string, inputs: readonly string[], scope: string, attributes: Record<string, AttributeValue> = {}, outputName?: string): string {
    if (outputName === undefined) return this.node(opType, inputs, scope, attributes)[0]!;
    const name = this.uniqueName(`${scope}/${opType}`);
    this.nodes.push(makeNode(opType, name, inputs, [outputName], Object.entries(attributes).map(([k, v]) => attribute(k, v))));
    return outputName;
  }

  private uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.nodeNames.has(name); i++) name = `${base}_${i}`;
    this.nodeNames.add(name);
    return name;
  }

  /** An int64 constant (one per distinct value). */
  ints(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const data = new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
    return this.constant(ElemType.INT64, dims, data, `i64:${dims.join('x')}:${values.join(',')}`);
  }

  /** A float32 constant (one per distinct value); a scalar when `dims` is []. */
  floats(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const data = float32Bytes(values);
    return this.constant(ElemType.FLOAT, dims, data, `f32:${dims.join('x')}:${Buffer.from(data).toString('base64')}`);
  }

  private constant(elemType: number, dims: readonly number[], data: Uint8Array, key: string): string {
    const known = this.constantNames.get(key);
    if (known) return known;
    const name = `const_${this.constantNames.size}`;
    this.constants.push(rawInitializer(name, elemType, dims, data));
    this.constantNames.set(key, name);
    return name;
  }

  /** A weight (written as external data) as a float32 value of the graph. */
  weight(weight: PendingWeight): string {
    return this.toFloat(this.storedWeight(weight), `/${weight.name}`);
  }

  /**
   * A weight in its stored type, for ops that only select from it (Gather, Slice): casting
   * what they select is cheaper than casting the table, and keeps the table an initialiser
   * that graph edits (textual inversion) can find.
   */
  storedWeight(weight: PendingWeight): string {
    this.weights.push(weight);
    return weight.name;
  }

  /** A value computed from stored weights, as float32. */
  toFloat(value: string, scope: string): string {
    return this.weightType === 'float32' ? value : this.op('Cast', [value], scope, { to: ElemType.FLOAT });
  }

  /**
   * Writes `<dir>/model.onnx` and its weights to `<dir>/<dataFile>`. Each weight's place follows
   * from its dims, so model.onnx is encoded before the data: `hash` is fed model.onnx then the data
   * file's bytes (alignment gaps as the zeros they read as) as they are written, the value
   * weightsHash (src/pipeline/model-hash.ts) would get by reading both back.
   */
  async write(dir: string, dataFile: string, options: WriteOptions = {}): Promise<void> {
    const { onWeight, hash } = options;
    await mkdir(dir, { recursive: true });
    const elemType = this.weightType === 'float32' ? ElemType.FLOAT : ElemType.FLOAT16;
    const places = this.layout();
    const initializers = [...this.constants, ...this.weights.map((w, i) => externalInitializer(w, elemType, dataFile, places[i]!.offset, places[i]!.length))];
    const model = this.model(initializers).encode();
    hash?.update(model);
    const handle = await open(join(dir, dataFile), 'w');
    try {
      let end = 0;
      // The next tensor is read (and transposed) while this one is written: the two waits overlap.
      let next = this.prefetch(0);
      for (const [i, weight] of this.weights.entries()) {
        const { offset, length } = places[i]!;
        const values = await next!;
        next = this.prefetch(i + 1);
        const bytes = this.encodeWeight(values);
        if (bytes.length !== length) throw new ConversionError(`${weight.name} read ${bytes.length} bytes; its dims [${weight.dims.join(', ')}] hold ${length} (a converter bug)`);
        await handle.write(bytes, 0, length, offset);
        hash?.update(new Uint8Array(offset - end)).update(bytes);
        end = offset + length;
        onWeight?.(length);
      }
    } finally {
      await handle.close();
    }
    await writeFile(join(dir, 'model.onnx'), model);
  }

  /** Weight i's values, read now; a failure is kept for the await, not reported as unhandled while a write is awaited. */
  private prefetch(i: number): Promise<Float32Array> | undefined {
    const read = this.weights[i]?.read();
    read?.catch(() => undefined);
    return read;
  }

  /** Each weight's offset and byte length in the data file, in order. */
  private layout(): Array<{ offset: number; length: number }> {
    const size = this.weightType === 'float32' ? 4 : 2;
    let end = 0;
    return this.weights.map((w) => {
      const length = w.dims.reduce((n, d) => n * d, 1) * size;
      const offset = length >= ALIGN_FROM_BYTES ? Math.ceil(end / DATA_ALIGNMENT) * DATA_ALIGNMENT : end;
      end = offset + length;
      return { offset, length };
    });
  }

  private encodeWeight(values: Float32Array): Uint8Array {
    if (this.weightType === 'float32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    const half = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) half[i] = floatToHalf(values[i]!);
    return new Uint8Array(half.buffer);
  }

  private model(initializers: Message[]): Message {
    const graph = new Message([
      ...this.nodes.map((n) => messageField(GRAPH.node, n)),
      stringField(GRAPH.name, this.name),
      ...initializers.map((i) => messageField(GRAPH.initializer, i)),
      ...this.inputs.map((i) => messageField(GRAPH.input, i)),
      ...this.outputs.map((o) => messageField(GRAPH.output, o)),
    ]);
    return new Message([
      intField(MODEL.irVersion, IR_VERSION),
      stringField(MODEL.producerName, 'diffuse'),
      stringField(MODEL.producerVersion, 'graphs/1'),
      messageField(MODEL.graph, graph),
      messageField(MODEL.opsetImport, new Message([stringField(OPSET.domain, ''), intField(OPSET.version, OPSET_VERSION)])),
    ]);
  }
}

function externalInitializer(weight: PendingWeight, elemType: number, location: string, offset: number, length: number): Message {
  const entry = (key: string, value: string): Message => new Message([stringField(ENTRY.key, key), stringField(ENTRY.value, value)]);
  return new Message([
    ...weight.dims.map((d) => intField(TENSOR.dims, d)),
    intField(TENSOR.dataType, elemType),
    stringField(TENSOR.name, weight.name),
    ...[entry('location', location), entry('offset', String(offset)), entry('length', String(length))].map((e) => messageField(TENSOR.externalData, e)),
    intField(TENSOR.dataLocation, DATA_LOCATION_EXTERNAL),
  ]);
}
