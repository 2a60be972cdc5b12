import { appendInitializer, floatInitializer, rawInitializer } from './initializers.js';
import { makeNode } from './node-builders.js';
import { ElemType, NodeProto, type GraphProto, type Message } from './proto.js';

/**
 * What a graph edit adds, written under one name prefix: nodes into a list, which the edit then
 * places in the graph where their inputs exist (graph edits splice, they do not append), and
 * constants straight into the graph's initialisers. Names are `<prefix>/<kind>_<n>`, unique as
 * long as each emitter of one edit has its own prefix.
 */
export class GraphEmitter {
  readonly nodes: NodeProto[] = [];
  private count = 0;

  constructor(
    private readonly graph: GraphProto,
    readonly prefix: string,
  ) {}

  private fresh(kind: string): string {
    return `${this.prefix}/${kind}_${this.count++}`;
  }

  op(opType: string, inputs: readonly string[], attributes: readonly Message[] = []): string {
    return this.ops(opType, inputs, 1, attributes)[0]!;
  }

  /** A node with `outputs` outputs, named `<node>_output<i>`. */
  ops(opType: string, inputs: readonly string[], outputs: number, attributes: readonly Message[] = []): string[] {
    const name = this.fresh(opType);
    const names = Array.from({ length: outputs }, (_, i) => `${name}_output${i}`);
    this.nodes.push(new NodeProto(makeNode(opType, name, inputs, names, attributes)));
    return names;
  }

  private constant(tensor: (name: string) => Message): string {
    const name = this.fresh('const');
    appendInitializer(this.graph, tensor(name));
    return name;
  }

  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    return this.constant((name) => rawInitializer(name, ElemType.INT64, dims, raw));
  }

  double(value: number): string {
    const raw = new Uint8Array(8);
    new DataView(raw.buffer).setFloat64(0, value, true);
    return this.constant((name) => rawInitializer(name, ElemType.DOUBLE, [], raw));
  }

  float(dims: readonly number[], values: Float32Array): string {
    return this.constant((name) => floatInitializer(name, ElemType.FLOAT, dims, values));
  }

  scalar(value: number): string {
    return this.float([], Float32Array.of(value));
  }
}
