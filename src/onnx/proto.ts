/**
 * A minimal protobuf wire-format codec, enough to edit ONNX graphs without a schema compiler.
 *
 * A message decodes into its fields in file order, each a view into the original bytes (no
 * copy), and nested messages are decoded only when asked for. Encoding writes every untouched
 * field back from its original bytes, so an unedited message re-encodes byte-identically
 * (unknown fields and non-canonical varints included) and a small edit to a large model copies
 * the big initialisers once, not per level. The decoder works on offsets into one buffer, which
 * would also let a future reader walk a large model's top level without holding it whole.
 */

export enum Wire {
  Varint = 0,
  I64 = 1,
  Len = 2,
  I32 = 5,
}

export interface Field {
  readonly no: number;
  readonly wire: Wire;
  /** The payload: varint bytes, the 8 or 4 fixed bytes, or a length-delimited body. */
  readonly data: Uint8Array;
  /** The field's original encoding (tag included); absent for fields built by an edit. */
  readonly raw?: Uint8Array;
  /** The body decoded as a message, once someone asked for it. */
  child?: Message;
}

function readVarint(bytes: Uint8Array, pos: number): { value: bigint; end: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = pos; i < bytes.length && i < pos + 10; i++) {
    const b = bytes[i]!;
    value |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return { value, end: i + 1 };
    shift += 7n;
  }
  throw new Error(`protobuf: malformed varint at byte ${pos}`);
}

/** Tags and lengths fit in 32 bits; a plain-number path keeps decoding of big graphs fast. */
function readSmallVarint(bytes: Uint8Array, pos: number): { value: number; end: number } {
  let value = 0;
  let mul = 1;
  for (let i = pos; i < bytes.length && i < pos + 8; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return { value, end: i + 1 };
    mul *= 128;
  }
  throw new Error(`protobuf: malformed length or tag at byte ${pos}`);
}

/** Varint bytes of a non-negative value, or of a negative int64 as two's complement (10 bytes). */
export function encodeVarint(value: bigint | number): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

export function decodeFields(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const start = pos;
    const tag = readSmallVarint(bytes, pos);
    pos = tag.end;
    const no = Math.floor(tag.value / 8);
    const wire = (tag.value % 8) as Wire;
    let dataStart = pos;
    switch (wire) {
      case Wire.Varint:
        pos = readVarint(bytes, pos).end;
        break;
      case Wire.I64:
        pos += 8;
        break;
      case Wire.I32:
        pos += 4;
        break;
      case Wire.Len: {
        const len = readSmallVarint(bytes, pos);
        dataStart = len.end;
        pos = len.end + len.value;
        break;
      }
      default:
        throw new Error(`protobuf: unsupported wire type ${wire as number} (field ${no}) at byte ${start}`);
    }
    if (pos > bytes.length) throw new Error(`protobuf: field ${no} at byte ${start} runs past the end`);
    fields.push({ no, wire, data: bytes.subarray(dataStart, pos), raw: bytes.subarray(start, pos) });
  }
  return fields;
}

/** A decoded message: its fields in order, editable in place. */
export class Message {
  private edited = false;

  constructor(readonly fields: Field[]) {}

  static decode(bytes: Uint8Array): Message {
    return new Message(decodeFields(bytes));
  }

  /** True when this message or any message decoded under it was changed. */
  get modified(): boolean {
    return this.edited || this.fields.some((f) => f.child?.modified === true);
  }

  all(no: number): Field[] {
    return this.fields.filter((f) => f.no === no);
  }

  first(no: number): Field | undefined {
    return this.fields.find((f) => f.no === no);
  }

  /** The nested messages of a (repeated) field, decoded on first use and kept for editing. */
  messages(no: number): Message[] {
    return this.all(no).map(childOf);
  }

  message(no: number): Message | undefined {
    const f = this.first(no);
    return f ? childOf(f) : undefined;
  }

  strings(no: number): string[] {
    return this.all(no).map((f) => utf8.decode(f.data));
  }

  string(no: number): string | undefined {
    const f = this.first(no);
    return f ? utf8.decode(f.data) : undefined;
  }

  /** A varint field as int64 (two's complement read back to negative). */
  int(no: number): bigint | undefined {
    const f = this.first(no);
    return f ? BigInt.asIntN(64, readVarint(f.data, 0).value) : undefined;
  }

  /** Replaces every occurrence of a field with the given values, at the first one's place. */
  set(no: number, values: readonly Field[]): void {
    const at = this.fields.findIndex((f) => f.no === no);
    const kept = this.fields.filter((f) => f.no !== no);
    const index = at < 0 ? kept.length : this.fields.slice(0, at).filter((f) => f.no !== no).length;
    kept.splice(index, 0, ...values);
    this.fields.splice(0, this.fields.length, ...kept);
    this.edited = true;
  }

  setString(no: number, value: string): void {
    this.set(no, [stringField(no, value)]);
  }

  setStrings(no: number, values: readonly string[]): void {
    this.set(no, values.map((v) => stringField(no, v)));
  }

  setInt(no: number, value: bigint | number): void {
    this.set(no, [intField(no, value)]);
  }

  setMessage(no: number, value: Message): void {
    this.set(no, [messageField(no, value)]);
  }

  /** Inserts fields before the first field numbered `before` (at the end when there is none). */
  insert(before: number, values: readonly Field[]): void {
    const at = this.fields.findIndex((f) => f.no === before);
    this.fields.splice(at < 0 ? this.fields.length : at, 0, ...values);
    this.edited = true;
  }

  /** Appends after the last field numbered `after` (at the end when there is none). */
  append(after: number, values: readonly Field[]): void {
    let at = -1;
    this.fields.forEach((f, i) => {
      if (f.no === after) at = i;
    });
    this.fields.splice(at < 0 ? this.fields.length : at + 1, 0, ...values);
    this.edited = true;
  }

  encode(): Uint8Array {
    const parts = this.fields.map(encodeField);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let pos = 0;
    for (const p of parts) {
      out.set(p, pos);
      pos += p.length;
    }
    return out;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function childOf(field: Field): Message {
  if (field.wire !== Wire.Len) throw new Error(`protobuf: field ${field.no} is not a message`);
  field.child ??= Message.decode(field.data);
  return field.child;
}

function encodeField(field: Field): Uint8Array {
  if (field.raw && !field.child?.modified) return field.raw;
  const data = field.child ? field.child.encode() : field.data;
  const tag = encodeVarint(field.no * 8 + field.wire);
  const len = field.wire === Wire.Len ? encodeVarint(data.length) : new Uint8Array(0);
  const out = new Uint8Array(tag.length + len.length + data.length);
  out.set(tag, 0);
  out.set(len, tag.length);
  out.set(data, tag.length + len.length);
  return out;
}

export function stringField(no: number, value: string): Field {
  return { no, wire: Wire.Len, data: utf8Encoder.encode(value) };
}

export function intField(no: number, value: bigint | number): Field {
  return { no, wire: Wire.Varint, data: encodeVarint(value) };
}

export function messageField(no: number, value: Message): Field {
  // Kept as a child so later edits to `value` still reach the encoding.
  return { no, wire: Wire.Len, data: new Uint8Array(0), child: value };
}

/*
 * Thin typed views over the ONNX messages the graph editor needs (field numbers from onnx.proto,
 * onnx 1.17). Each wraps a Message and edits it in place; everything else rides along untouched.
 */

/** TensorProto.DataType values. */
export const ElemType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10, DOUBLE: 11 } as const;
export type ElemType = (typeof ElemType)[keyof typeof ElemType];

const MODEL = { graph: 7 } as const;
const GRAPH = { node: 1, input: 11, output: 12, valueInfo: 13 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const ATTRIBUTE = { name: 1, i: 3, g: 6, graphs: 11, type: 20 } as const;
/** AttributeProto.AttributeType values used here. */
const ATTRIBUTE_TYPE = { INT: 2 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIMENSION = { dimValue: 1, dimParam: 2 } as const;

export class ModelProto {
  constructor(readonly msg: Message) {}

  static decode(bytes: Uint8Array): ModelProto {
    return new ModelProto(Message.decode(bytes));
  }

  get graph(): GraphProto {
    const g = this.msg.message(MODEL.graph);
    if (!g) throw new Error('ONNX model has no graph');
    return new GraphProto(g);
  }

  encode(): Uint8Array {
    return this.msg.encode();
  }
}

export class GraphProto {
  constructor(readonly msg: Message) {}

  get nodes(): NodeProto[] {
    return this.msg.messages(GRAPH.node).map((m) => new NodeProto(m));
  }

  get inputs(): ValueInfoProto[] {
    return this.msg.messages(GRAPH.input).map((m) => new ValueInfoProto(m));
  }

  get outputs(): ValueInfoProto[] {
    return this.msg.messages(GRAPH.output).map((m) => new ValueInfoProto(m));
  }

  get valueInfo(): ValueInfoProto[] {
    return this.msg.messages(GRAPH.valueInfo).map((m) => new ValueInfoProto(m));
  }

  /** Nodes run in file order, so a node feeding the graph goes before all others. */
  prependNode(node: NodeProto): void {
    this.msg.insert(GRAPH.node, [messageField(GRAPH.node, node.msg)]);
  }

  appendNode(node: NodeProto): void {
    this.msg.append(GRAPH.node, [messageField(GRAPH.node, node.msg)]);
  }

  appendInput(value: ValueInfoProto): void {
    this.msg.append(GRAPH.input, [messageField(GRAPH.input, value.msg)]);
  }

  appendOutput(value: ValueInfoProto): void {
    this.msg.append(GRAPH.output, [messageField(GRAPH.output, value.msg)]);
  }

  /** Drops the nodes and graph inputs `keep` rejects; everything else stays in place. */
  filter(keep: { node: (node: NodeProto) => boolean; input: (input: ValueInfoProto) => boolean }): void {
    const nodes = this.nodes;
    const inputs = this.inputs;
    const keptNodes = new Set(nodes.filter(keep.node).map((n) => n.msg));
    const keptInputs = new Set(inputs.filter(keep.input).map((i) => i.msg));
    this.msg.set(GRAPH.node, this.msg.all(GRAPH.node).filter((f) => keptNodes.has(f.child!)));
    this.msg.set(GRAPH.input, this.msg.all(GRAPH.input).filter((f) => keptInputs.has(f.child!)));
  }
}

export class NodeProto {
  constructor(readonly msg: Message) {}

  static create(opType: string, name: string, inputs: readonly string[], outputs: readonly string[], attributes: readonly AttributeProto[]): NodeProto {
    const m = new Message([]);
    m.setStrings(NODE.input, inputs);
    m.setStrings(NODE.output, outputs);
    m.setString(NODE.name, name);
    m.setString(NODE.opType, opType);
    m.set(NODE.attribute, attributes.map((a) => messageField(NODE.attribute, a.msg)));
    return new NodeProto(m);
  }

  get name(): string {
    return this.msg.string(NODE.name) ?? '';
  }

  get opType(): string {
    return this.msg.string(NODE.opType) ?? '';
  }

  get inputs(): string[] {
    return this.msg.strings(NODE.input);
  }

  set inputs(names: string[]) {
    this.msg.setStrings(NODE.input, names);
  }

  get outputs(): string[] {
    return this.msg.strings(NODE.output);
  }

  set outputs(names: string[]) {
    this.msg.setStrings(NODE.output, names);
  }

  get attributes(): AttributeProto[] {
    return this.msg.messages(NODE.attribute).map((m) => new AttributeProto(m));
  }
}

export class AttributeProto {
  constructor(readonly msg: Message) {}

  static int(name: string, value: number | bigint): AttributeProto {
    const m = new Message([]);
    m.setString(ATTRIBUTE.name, name);
    m.setInt(ATTRIBUTE.i, value);
    m.setInt(ATTRIBUTE.type, ATTRIBUTE_TYPE.INT);
    return new AttributeProto(m);
  }

  get name(): string {
    return this.msg.string(ATTRIBUTE.name) ?? '';
  }

  /** Subgraphs of control-flow nodes (If, Loop, Scan): `g` and `graphs`. */
  get subgraphs(): GraphProto[] {
    return [...this.msg.messages(ATTRIBUTE.g), ...this.msg.messages(ATTRIBUTE.graphs)].map((m) => new GraphProto(m));
  }
}

export class ValueInfoProto {
  constructor(readonly msg: Message) {}

  /** A tensor value of a known element type whose dimensions are named, not sized. */
  static tensor(name: string, elemType: number, dimNames: readonly string[]): ValueInfoProto {
    const dims = dimNames.map((d) => messageField(SHAPE.dim, new Message([stringField(DIMENSION.dimParam, d)])));
    const tensorType = new Message([intField(TENSOR_TYPE.elemType, elemType), messageField(TENSOR_TYPE.shape, new Message(dims))]);
    const type = new Message([messageField(TYPE.tensorType, tensorType)]);
    return new ValueInfoProto(new Message([stringField(VALUE_INFO.name, name), messageField(VALUE_INFO.type, type)]));
  }

  get name(): string {
    return this.msg.string(VALUE_INFO.name) ?? '';
  }

  set name(value: string) {
    this.msg.setString(VALUE_INFO.name, value);
  }

  /** The tensor type, or undefined for sequences, maps and untyped values. */
  get tensorType(): TensorTypeProto | undefined {
    const t = this.msg.message(VALUE_INFO.type)?.message(TYPE.tensorType);
    return t ? new TensorTypeProto(t) : undefined;
  }
}

export class TensorTypeProto {
  constructor(readonly msg: Message) {}

  get elemType(): number {
    return Number(this.msg.int(TENSOR_TYPE.elemType) ?? 0n);
  }

  set elemType(value: number) {
    this.msg.setInt(TENSOR_TYPE.elemType, value);
  }

  /** Undefined when the shape is unknown (not even the rank). */
  get dims(): Dimension[] | undefined {
    const shape = this.msg.message(TENSOR_TYPE.shape);
    return shape?.messages(SHAPE.dim).map((m) => new Dimension(m));
  }
}

export class Dimension {
  constructor(readonly msg: Message) {}

  /** A size, a symbolic name, or undefined when the dimension is unknown. */
  get value(): number | string | undefined {
    const v = this.msg.int(DIMENSION.dimValue);
    if (v !== undefined) return Number(v);
    return this.msg.string(DIMENSION.dimParam);
  }

  /** Fixes the dimension; dim_value and dim_param are a oneof, so the name goes. */
  set value(size: number | string) {
    this.msg.set(DIMENSION.dimParam, []);
    this.msg.set(DIMENSION.dimValue, []);
    if (typeof size === 'string') this.msg.setString(DIMENSION.dimParam, size);
    else this.msg.setInt(DIMENSION.dimValue, size);
  }
}
