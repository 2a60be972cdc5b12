import { intAttribute } from '../../onnx/node-builders.js';
import { Message, NodeProto } from '../../onnx/proto.js';
import type { Activity } from './activity.js';
import type { Emitter } from './emitter.js';
import type { IrNode } from './ir.js';
import type { ValueFacts } from './shapes.js';
import { DIFFERENTIABLE_TYPES, DataType, numel } from './tensor.js';

/**
 * Gradient checkpointing by segment. The forward nodes are cut into `segments` consecutive
 * parts of about equal activation size; while the backward runs through a segment, the forward
 * values it reads from that same segment are recomputed from what enters the segment, so only
 * the values crossing segment boundaries (and one segment's activations at a time) stay in
 * memory, for about one more forward pass. The last segment is not recomputed (its values are
 * still alive when the backward starts).
 *
 * ONNX Runtime would merge a recomputed copy with its original (common-subexpression
 * elimination) and could schedule it as early as its inputs allow, which would keep both alive.
 * So every activation entering a recomputed segment is read through a gate, x + z, where z is an
 * exact zero computed from every gradient pending when the backward reaches the segment — all
 * that later segments contribute to it, skip connections included — as Where(false, Σ g[0], 0)
 * (no NaN or infinity in g can leak into it): the copy differs from the original, and cannot
 * start before the later segments' backward is done.
 */

const NODE_NAME = 3;

/** The segment of each forward node, by cumulative size of the differentiated nodes' outputs. */
export function planSegments(forward: readonly IrNode[], activity: Activity, facts: ReadonlyMap<string, ValueFacts>, segments: number): Map<IrNode, number> {
  const active = new Set(activity.nodes);
  const size = (node: IrNode) => (active.has(node) ? node.outputs.reduce((n, o) => n + numel(facts.get(o)?.dims ?? []), 0) : 0);
  const total = forward.reduce((n, node) => n + size(node), 0);
  const plan = new Map<IrNode, number>();
  let seen = 0;
  for (const node of forward) {
    plan.set(node, Math.min(segments - 1, Math.floor((seen * segments) / (total || 1))));
    seen += size(node);
  }
  return plan;
}

export class SegmentRecompute {
  private readonly producer = new Map<string, IrNode>();
  private readonly last: number;
  private segment = -1;
  private gateSources: Array<{ name: string; elemType: number }> = [];
  private readonly gates = new Map<number, string>();
  private readonly copies = new Map<string, string>();

  constructor(
    private readonly e: Emitter,
    private readonly plan: ReadonlyMap<IrNode, number>,
    private readonly facts: ReadonlyMap<string, ValueFacts>,
  ) {
    for (const node of plan.keys()) for (const o of node.outputs) if (o !== '') this.producer.set(o, node);
    this.last = Math.max(...plan.values());
  }

  /**
   * Called as the backward reaches each node, with the gradients accumulated so far: entering a
   * new segment starts its copies afresh, gated on the gradients of values from this segment or
   * before (those of later segments' values are used up).
   */
  enter(node: IrNode, pending: ReadonlyMap<string, string>): void {
    const segment = this.plan.get(node) ?? this.last;
    if (segment === this.segment) return;
    this.segment = segment;
    this.gateSources = [...pending]
      .filter(([value]) => {
        const p = this.producer.get(value);
        return p === undefined || this.plan.get(p)! <= segment;
      })
      .map(([value, grad]) => ({ name: grad, elemType: this.facts.get(value)?.elemType ?? 0 }));
    this.gates.clear();
    this.copies.clear();
  }

  /** The name a rule of `node` reads forward value `value` under. */
  read(node: IrNode, value: string): string {
    const segment = this.plan.get(node) ?? this.last;
    if (segment === this.last || !this.inSegment(value)) return value;
    return this.copy(value);
  }

  private inSegment(value: string): boolean {
    const p = this.producer.get(value);
    return p !== undefined && this.plan.get(p) === this.segment;
  }

  private copy(value: string): string {
    const hit = this.copies.get(value);
    if (hit) return hit;
    const node = this.producer.get(value)!;
    const inputs = node.inputs.map((v) => (v === '' ? v : this.inSegment(v) ? this.copy(v) : this.gated(v)));
    const copy = new NodeProto(Message.decode(node.msg.encode()));
    copy.inputs = inputs;
    copy.outputs = node.outputs.map((o) => {
      if (o === '') return o;
      const name = this.e.fresh('recompute');
      this.copies.set(o, name);
      return name;
    });
    copy.msg.setString(NODE_NAME, this.e.fresh(`recompute/${node.name || node.opType}`));
    this.e.nodes.push(copy.msg);
    return this.copies.get(value)!;
  }

  /** An activation entering the segment, read through the gate (constants and integers need none). */
  private gated(value: string): string {
    const f = this.facts.get(value);
    if (!f || f.value || !DIFFERENTIABLE_TYPES.has(f.elemType) || this.gateSources.length === 0) return value;
    const hit = this.copies.get(value);
    if (hit) return hit;
    const name = this.e.add(value, this.gate(f.elemType));
    this.copies.set(value, name);
    return name;
  }

  private gate(elemType: number): string {
    const hit = this.gates.get(elemType);
    if (hit) return hit;
    const { e } = this;
    const firsts = this.gateSources.map((source) => {
      const first = e.op1('Slice', [e.reshape(source.name, [-1]), e.ints([0]), e.ints([1])]);
      return source.elemType === elemType ? first : e.op1('Cast', [first], [intAttribute('to', elemType)]);
    });
    const first = firsts.reduce((sum, f) => e.add(sum, f));
    const never = e.constant({ elemType: DataType.BOOL, dims: [1], data: [0] });
    const zero = e.op1('Where', [never, first, e.constant({ elemType, dims: [1], data: [0] })]);
    this.gates.set(elemType, zero);
    return zero;
  }
}
