import { Message, Wire, intField, messageField, stringField, type Field, type ModelProto, type NodeProto } from './proto.js';

/**
 * Building and reading the pieces graph rewrites add: nodes of any domain, their int/float
 * attributes, and the opset imports those domains need (field numbers from onnx.proto, 1.17).
 */

export const MS_DOMAIN = 'com.microsoft';

const MODEL_OPSET_IMPORT = 8;
const OPSET = { domain: 1, version: 2 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const ATTRIBUTE = { name: 1, f: 2, i: 3, s: 4, t: 5, ints: 8, type: 20 } as const;
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, INTS: 7 } as const;

export function floatAttribute(name: string, value: number): Message {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setFloat32(0, value, true);
  return new Message([stringField(ATTRIBUTE.name, name), { no: ATTRIBUTE.f, wire: Wire.I32, data }, intField(ATTRIBUTE.type, ATTRIBUTE_TYPE.FLOAT)]);
}

export function intAttribute(name: string, value: number): Message {
  return new Message([stringField(ATTRIBUTE.name, name), intField(ATTRIBUTE.i, value), intField(ATTRIBUTE.type, ATTRIBUTE_TYPE.INT)]);
}

/** Unpacked, one varint per value: onnx.proto is proto2, where that is the canonical form. */
export function intsAttribute(name: string, values: readonly number[]): Message {
  return new Message([stringField(ATTRIBUTE.name, name), ...values.map((v) => intField(ATTRIBUTE.ints, v)), intField(ATTRIBUTE.type, ATTRIBUTE_TYPE.INTS)]);
}

export function stringAttribute(name: string, value: string): Message {
  return new Message([stringField(ATTRIBUTE.name, name), stringField(ATTRIBUTE.s, value), intField(ATTRIBUTE.type, ATTRIBUTE_TYPE.STRING)]);
}

/** A tensor-valued attribute (ConstantOfShape's value); `tensor` is a TensorProto message. */
export function tensorAttribute(name: string, tensor: Message): Message {
  return new Message([stringField(ATTRIBUTE.name, name), messageField(ATTRIBUTE.t, tensor), intField(ATTRIBUTE.type, ATTRIBUTE_TYPE.TENSOR)]);
}

/** A NodeProto message; `domain` only for non-default operator sets (com.microsoft). */
export function makeNode(opType: string, name: string, inputs: readonly string[], outputs: readonly string[], attributes: readonly Message[] = [], domain?: string): Message {
  return new Message([
    ...inputs.map((i) => stringField(NODE.input, i)),
    ...outputs.map((o) => stringField(NODE.output, o)),
    stringField(NODE.name, name),
    stringField(NODE.opType, opType),
    ...attributes.map((a) => messageField(NODE.attribute, a)),
    ...(domain ? [stringField(NODE.domain, domain)] : []),
  ]);
}

/** The version of the default (ai.onnx) operator set the model imports. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.msg.messages(MODEL_OPSET_IMPORT).find((m) => ['', 'ai.onnx'].includes(m.string(OPSET.domain) ?? ''));
  return Number(entry?.int(OPSET.version) ?? 0n);
}

/**
 * Raises the default operator set to at least `version` (an edit needing a newer operator's
 * form). Only for graphs whose operators mean the same at both versions: the caller knows.
 */
export function raiseDefaultOpset(model: ModelProto, version: number): void {
  const entry = model.msg.messages(MODEL_OPSET_IMPORT).find((m) => ['', 'ai.onnx'].includes(m.string(OPSET.domain) ?? ''));
  if (!entry) throw new Error('the model imports no default operator set');
  if (Number(entry.int(OPSET.version) ?? 0n) < version) entry.setInt(OPSET.version, version);
}

export function ensureOpsetImport(model: ModelProto, domain: string, version = 1): void {
  const imports = model.msg.messages(MODEL_OPSET_IMPORT);
  if (imports.some((m) => (m.string(OPSET.domain) ?? '') === domain)) return;
  const entry = new Message([stringField(OPSET.domain, domain), intField(OPSET.version, version)]);
  model.msg.append(MODEL_OPSET_IMPORT, [messageField(MODEL_OPSET_IMPORT, entry)]);
}

function signedVarint(data: Uint8Array): number {
  let v = 0n;
  data.forEach((b, i) => (v |= BigInt(b & 0x7f) << BigInt(7 * i)));
  return Number(BigInt.asIntN(64, v));
}

function packedVarints(data: Uint8Array): number[] {
  const out: number[] = [];
  let start = 0;
  data.forEach((b, i) => {
    if ((b & 0x80) === 0) {
      out.push(signedVarint(data.subarray(start, i + 1)));
      start = i + 1;
    }
  });
  return out;
}

/** A `repeated int64` field, written packed (one Len field) or one varint per value. */
export function varintValues(fields: Field[]): number[] {
  return fields.flatMap((f) => (f.wire === Wire.Varint ? [signedVarint(f.data)] : packedVarints(f.data)));
}

export function intsAttr(node: NodeProto, name: string): number[] | undefined {
  const attr = node.attributes.find((a) => a.name === name);
  return attr ? varintValues(attr.msg.all(ATTRIBUTE.ints)) : undefined;
}

export function intAttr(node: NodeProto, name: string): number | undefined {
  const v = node.attributes.find((a) => a.name === name)?.msg.int(ATTRIBUTE.i);
  return v === undefined ? undefined : Number(v);
}
