import { floatToHalf } from './dtype.js';
import { ElemType, Message, Wire, intField, messageField, stringField, type Field, type GraphProto } from './proto.js';

/**
 * Graph initialisers (TensorProto) as far as graph surgery needs them: name, type, shape and
 * where the data lives. The data itself is never decoded here, so editing a model with a large
 * (possibly external) weight table costs nothing per weight.
 */

export const GRAPH_INITIALIZER = 5;
export const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 } as const;
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

/** The files an external-data model reads its weights from, relative to the model's folder. */
export function externalDataLocations(graph: GraphProto): string[] {
  const locations = new Set<string>();
  for (const init of initializers(graph)) {
    if (Number(init.msg.int(TENSOR.dataLocation) ?? 0n) !== DATA_LOCATION_EXTERNAL) continue;
    for (const entry of init.msg.messages(TENSOR.externalData)) {
      if (entry.string(ENTRY.key) === 'location') locations.add(entry.string(ENTRY.value) ?? '');
    }
  }
  return [...locations];
}

/** A new inline float32 or float16 initialiser holding `values` with shape `dims`. */
export function floatInitializer(name: string, elemType: number, dims: readonly number[], values: Float32Array): Message {
  let raw: Uint8Array;
  if (elemType === ElemType.FLOAT) {
    const view = new DataView(new ArrayBuffer(values.length * 4));
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    raw = new Uint8Array(view.buffer);
  } else if (elemType === ElemType.FLOAT16) {
    const view = new DataView(new ArrayBuffer(values.length * 2));
    values.forEach((v, i) => view.setUint16(i * 2, floatToHalf(v), true));
    raw = new Uint8Array(view.buffer);
  } else {
    throw new Error(`cannot write an initialiser of element type ${elemType}`);
  }
  const fields: Field[] = [
    ...dims.map((d) => intField(TENSOR.dims, d)),
    intField(TENSOR.dataType, elemType),
    stringField(TENSOR.name, name),
    { no: TENSOR.rawData, wire: Wire.Len, data: raw },
  ];
  return new Message(fields);
}

export function appendInitializer(graph: GraphProto, tensor: Message): void {
  graph.msg.append(GRAPH_INITIALIZER, [messageField(GRAPH_INITIALIZER, tensor)]);
}
