import type { Emitter } from '../emitter.js';
import type { IrNode } from '../ir.js';
import type { ConstTensor } from '../tensor.js';

/** What a vector-Jacobian rule sees of the node it differentiates. */
export interface VjpContext {
  node: IrNode;
  opset: number;
  e: Emitter;
  /** Static shape of a forward value (throws ShapeError when not known). */
  dims(value: string): number[];
  elemType(value: string): number;
  /** The value of a small constant input, if it is one. */
  constant(value: string): ConstTensor | undefined;
  /** The name the backward reads a forward value under (a recomputed copy inside a checkpointed segment). */
  fwd(value: string): string;
  /** The upstream gradient of each output; undefined where nothing downstream depends on it. */
  gradOut: ReadonlyArray<string | undefined>;
  /** Which inputs need a gradient (active and differentiable). */
  needs: readonly boolean[];
  /** Refuses this node with a reason (an attribute form the rule does not cover). */
  unsupported(reason: string): never;
}

export interface GradientRule {
  /** Input positions gradients flow through; the others (indices, shapes, conditions) never carry one. */
  differentiable: (node: IrNode) => readonly number[];
  /** The gradient for each input (undefined where none is needed). */
  vjp: (ctx: VjpContext) => Array<string | undefined>;
}

export const ALL_INPUTS = (node: IrNode): number[] => node.inputs.map((_, i) => i);
export const FIRST_INPUT = (): number[] => [0];

/** gradOut[0], which every single-output rule is called with (a rule runs only when some output has a gradient). */
export function upstream(ctx: VjpContext): string {
  const g = ctx.gradOut[0];
  if (g === undefined) throw new Error(`no upstream gradient for ${ctx.node.name}`);
  return g;
}
