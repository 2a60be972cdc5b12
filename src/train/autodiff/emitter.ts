import { intAttribute, intsAttribute, makeNode } from '../../onnx/node-builders.js';
import type { Message } from '../../onnx/proto.js';
import { DataType, encodeTensor, type ConstTensor } from './tensor.js';

/**
 * Writes the nodes and constants of the backward graph, each under a fresh name, in the form
 * the model's opset defines (ReduceSum's axes became an input in opset 13, ReduceMean's in 18).
 * Shapes are static by the time anything is emitted, so reshapes and broadcasts take constant
 * shapes, and shape arithmetic never reaches the graph.
 */
export class Emitter {
  readonly nodes: Message[] = [];
  readonly initializers: Message[] = [];
  private readonly constants = new Map<string, string>();
  private counter = 0;
  private prefix = 'autodiff';

  constructor(
    readonly opset: number,
    /** Whether the forward graph already uses a name. */
    private readonly taken: (name: string) => boolean,
  ) {}

  /** Names what follows after the forward node being differentiated, for readable profiles. */
  scope(prefix: string): void {
    this.prefix = prefix;
  }

  fresh(hint: string): string {
    for (;;) {
      const name = `${this.prefix}/${hint}_${this.counter++}`;
      if (!this.taken(name)) return name;
    }
  }

  op(opType: string, inputs: readonly string[], attributes: readonly Message[] = [], outputs = 1): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(`${opType}_out`));
    this.nodes.push(makeNode(opType, this.fresh(opType), inputs, names, attributes));
    return names;
  }

  op1(opType: string, inputs: readonly string[], attributes: readonly Message[] = []): string {
    return this.op(opType, inputs, attributes)[0]!;
  }

  /** A named node with a given output name (the graph's gradient outputs). */
  named(opType: string, inputs: readonly string[], output: string): void {
    this.nodes.push(makeNode(opType, this.fresh(opType), inputs, [output]));
  }

  constant(t: ConstTensor): string {
    const key = JSON.stringify(t);
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    this.initializers.push(encodeTensor(name, t));
    this.constants.set(key, name);
    return name;
  }

  /** A 1-D int64 constant (shapes, axes, pads). */
  ints(values: readonly number[]): string {
    return this.constant({ elemType: DataType.INT64, dims: [values.length], data: [...values] });
  }

  /** A rank-0 constant of a float type. */
  scalar(value: number, elemType: number): string {
    return this.constant({ elemType, dims: [], data: [elemType === DataType.FLOAT ? Math.fround(value) : value] });
  }

  add(a: string, b: string): string {
    return this.op1('Add', [a, b]);
  }

  sub(a: string, b: string): string {
    return this.op1('Sub', [a, b]);
  }

  mul(a: string, b: string): string {
    return this.op1('Mul', [a, b]);
  }

  div(a: string, b: string): string {
    return this.op1('Div', [a, b]);
  }

  neg(a: string): string {
    return this.op1('Neg', [a]);
  }

  reshape(x: string, dims: readonly number[]): string {
    return this.op1('Reshape', [x, this.ints(dims)]);
  }

  transpose(x: string, perm: readonly number[]): string {
    return this.op1('Transpose', [x], [intsAttribute('perm', perm)]);
  }

  expand(x: string, dims: readonly number[]): string {
    return this.op1('Expand', [x, this.ints(dims)]);
  }

  reduceSum(x: string, axes: readonly number[], keepdims: boolean): string {
    const keep = intAttribute('keepdims', keepdims ? 1 : 0);
    return this.opset >= 13 ? this.op1('ReduceSum', [x, this.ints(axes)], [keep]) : this.op1('ReduceSum', [x], [intsAttribute('axes', axes), keep]);
  }

  reduceMean(x: string, axes: readonly number[], keepdims: boolean): string {
    const keep = intAttribute('keepdims', keepdims ? 1 : 0);
    return this.opset >= 18 ? this.op1('ReduceMean', [x, this.ints(axes)], [keep]) : this.op1('ReduceMean', [x], [intsAttribute('axes', axes), keep]);
  }

  /** Zeros of a shape: a broadcast scalar, nothing stored. */
  zeros(dims: readonly number[], elemType: number): string {
    return this.expand(this.scalar(0, elemType), dims);
  }

  /**
   * The gradient of a value that was broadcast from `to` up to `from`: summed over the axes
   * broadcasting added or stretched, then shaped as `to`.
   */
  unbroadcast(g: string, from: readonly number[], to: readonly number[]): string {
    const lead = from.length - to.length;
    // Axes of size 1 need no sum, only the reshape.
    const axes = from.flatMap((d, i) => (d !== 1 && (i < lead || to[i - lead] === 1) ? [i] : []));
    if (axes.length === 0) return lead === 0 ? g : this.reshape(g, to);
    const summed = this.reduceSum(g, axes, true);
    return lead === 0 ? summed : this.reshape(summed, to);
  }
}
