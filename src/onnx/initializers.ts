import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { floatToHalf, halfToFloat } from './dtype.js';
import { ElemType, Message, Wire, intField, messageField, stringField, type Field, type GraphProto } from './proto.js';

/**
 * Graph initialisers (TensorProto) as far as graph surgery needs them: name, type, shape and
 * where the data lives. The data itself is never decoded here, so editing a model with a large
 * (possibly external) weight table costs nothing per weight.
 */

export const GRAPH_INITIALIZER = 5;
export const TENSOR = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9, externalData: 13, dataLocation: 14 } as const;
const ENTRY = { key: 1, value: 2 } as const;
/** TensorProto.DataLocation.EXTERNAL */
export const DATA_LOCATION_EXTERNAL = 1;

export interface InitializerInfo {
  name: string;
  elemType: number;
  dims: number[];
  msg: Message;
}

function varints(data: Uint8Array): number[] {
  const out: number[] = [];
  let value = 0;
  let mul = 1;
  for (const b of data) {
    value += (b & 0x7f) * mul;
    mul *= 128;
    if ((b & 0x80) === 0) {
      out.push(value);
      value = 0;
      mul = 1;
    }
  }
  return out;
}

/** dims is `repeated int64`: written packed (one Len field) or one varint per dimension. */
function dimsOf(msg: Message): number[] {
  return msg.all(TENSOR.dims).flatMap((f) => varints(f.data));
}

export function initializers(graph: GraphProto): InitializerInfo[] {
  return graph.msg.messages(GRAPH_INITIALIZER).map((msg) => ({
    name: msg.string(TENSOR.name) ?? '',
    elemType: Number(msg.int(TENSOR.dataType) ?? 0n),
    dims: dimsOf(msg),
    msg,
  }));
}

/** Whether a TensorProto's data lives in an external file (data_location EXTERNAL). */
export const isExternal = (tensor: Message): boolean => Number(tensor.int(TENSOR.dataLocation) ?? 0n) === DATA_LOCATION_EXTERNAL;

/** The files an external-data model reads its weights from, relative to the model's folder. */
export function externalDataLocations(graph: GraphProto): string[] {
  const locations = new Set<string>();
  for (const init of initializers(graph)) {
    if (!isExternal(init.msg)) continue;
    for (const entry of init.msg.messages(TENSOR.externalData)) {
      if (entry.string(ENTRY.key) === 'location') locations.add(entry.string(ENTRY.value) ?? '');
    }
  }
  return [...locations];
}

function externalEntries(msg: Message): Map<string, string> {
  return new Map(msg.messages(TENSOR.externalData).map((e) => [e.string(ENTRY.key) ?? '', e.string(ENTRY.value) ?? '']));
}

/** The bytes of a tensor's data as stored: raw_data, or its range of an external file; undefined for typed fields (float_data …). */
function storedBytes(init: InitializerInfo, modelDir: string): Uint8Array | undefined {
  if (!isExternal(init.msg)) return init.msg.first(TENSOR.rawData)?.data;
  const entries = externalEntries(init.msg);
  const offset = Number(entries.get('offset') ?? 0);
  const length = Number(entries.get('length') ?? Number.NaN);
  const out = new Uint8Array(length);
  const fd = openSync(join(modelDir, entries.get('location') ?? ''), 'r');
  try {
    if (readSync(fd, out, 0, length, offset) !== length) throw new Error(`${init.name}: external data is shorter than its declared length`);
  } finally {
    closeSync(fd);
  }
  return out;
}

/** A float32 or float16 initialiser's values as float32, wherever they are stored. */
export function readFloatInitializer(init: InitializerInfo, modelDir: string): Float32Array {
  const count = init.dims.reduce((a, b) => a * b, 1);
  const bytes = storedBytes(init, modelDir);
  if (init.elemType === ElemType.FLOAT) {
    if (bytes) return new Float32Array(bytes.slice().buffer, 0, count);
    // float_data: packed fixed32 fields.
    const packed = init.msg.all(TENSOR.floatData).map((f) => f.data);
    const all = new Uint8Array(packed.reduce((n, p) => n + p.length, 0));
    packed.reduce((pos, p) => (all.set(p, pos), pos + p.length), 0);
    return new Float32Array(all.buffer, 0, count);
  }
  if (init.elemType === ElemType.FLOAT16 && bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Float32Array.from({ length: count }, (_, i) => halfToFloat(view.getUint16(i * 2, true)));
  }
  throw new Error(`${init.name}: cannot read an initialiser of element type ${init.elemType}`);
}

/** A new inline initialiser of any element type from its little-endian bytes. */
export function rawInitializer(name: string, elemType: number, dims: readonly number[], raw: Uint8Array): Message {
  const fields: Field[] = [
    ...dims.map((d) => intField(TENSOR.dims, d)),
    intField(TENSOR.dataType, elemType),
    stringField(TENSOR.name, name),
    { no: TENSOR.rawData, wire: Wire.Len, data: raw },
  ];
  return new Message(fields);
}

/** A new inline float32 or float16 initialiser holding `values` with shape `dims`. */
export function floatInitializer(name: string, elemType: number, dims: readonly number[], values: Float32Array): Message {
  if (elemType === ElemType.FLOAT) {
    return rawInitializer(name, elemType, dims, new Uint8Array(Float32Array.from(values).buffer));
  }
  if (elemType === ElemType.FLOAT16) {
    const view = new DataView(new ArrayBuffer(values.length * 2));
    values.forEach((v, i) => view.setUint16(i * 2, floatToHalf(v), true));
    return rawInitializer(name, elemType, dims, new Uint8Array(view.buffer));
  }
  throw new Error(`cannot write an initialiser of element type ${elemType}`);
}

/** Points an initialiser at `length` bytes of `file` from `offset`, dropping its old data fields. */
export function pointAtExternalData(tensor: Message, file: string, offset: number, length: number): void {
  const entry = (key: string, value: string) => messageField(TENSOR.externalData, new Message([stringField(ENTRY.key, key), stringField(ENTRY.value, value)]));
  tensor.set(TENSOR.rawData, []);
  tensor.set(TENSOR.floatData, []);
  tensor.set(TENSOR.externalData, [entry('location', file), entry('offset', String(offset)), entry('length', String(length))]);
  tensor.set(TENSOR.dataLocation, [intField(TENSOR.dataLocation, DATA_LOCATION_EXTERNAL)]);
}

export function appendInitializer(graph: GraphProto, tensor: Message): void {
  graph.msg.append(GRAPH_INITIALIZER, [messageField(GRAPH_INITIALIZER, tensor)]);
}

/** Drops the initialisers whose names `keep` rejects (their external data stays in its file, unread). */
export function keepInitializers(graph: GraphProto, keep: (name: string) => boolean): void {
  graph.msg.set(GRAPH_INITIALIZER, graph.msg.all(GRAPH_INITIALIZER).filter((f) => keep(Message.decode(f.data).string(TENSOR.name) ?? '')));
}

/** New external data: written to `staging`, which becomes `file` beside the graph. */
export interface ExternalData {
  file: string;
  staging: string;
}

/**
 * Moves the inline data of every initialiser of at least `minBytes` into the file `staging` (which
 * the model cache then places beside the graph as `file`). A graph whose weights are inline (int8's,
 * written by the quantizer) is otherwise copied whole by each later edit of it; with its weights
 * external, an edited copy links them.
 */
export function moveInlineDataToFile(graph: GraphProto, data: ExternalData, minBytes = 1024): void {
  let offset = 0;
  const out = openSync(data.staging, 'w');
  try {
    for (const tensor of graph.msg.messages(GRAPH_INITIALIZER)) {
      const raw = tensor.first(TENSOR.rawData)?.data;
      if (!raw || raw.byteLength < minBytes || isExternal(tensor)) continue;
      writeSync(out, raw);
      pointAtExternalData(tensor, data.file, offset, raw.byteLength);
      offset += raw.byteLength;
    }
  } finally {
    closeSync(out);
  }
}
