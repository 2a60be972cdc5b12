import type { Activity } from './activity.js';
import type { Emitter } from './emitter.js';
import { ShapeError, UnsupportedOpError } from './errors.js';
import type { GradientRule, VjpContext } from './rules/rule.js';
import type { ValueFacts } from './shapes.js';

/**
 * Reverse sweep: the differentiated nodes in reverse order, each turning its outputs' gradients
 * into its inputs' through its rule. A value read by several nodes gets one running sum, added
 * to as each consumer's contribution arrives (all consumers come after the producer, so the sum
 * is complete when the producer's turn comes).
 */
export interface BackwardPass {
  activity: Activity;
  facts: ReadonlyMap<string, ValueFacts>;
  rules: ReadonlyMap<string, GradientRule>;
  opset: number;
  /** Seeds: the upstream gradient of each differentiated output. */
  seeds: ReadonlyMap<string, string>;
}

export function emitBackward(e: Emitter, pass: BackwardPass): Map<string, string> {
  const { activity, facts, rules } = pass;
  const grads = new Map(pass.seeds);
  const accumulate = (value: string, g: string) => {
    const prior = grads.get(value);
    grads.set(value, prior === undefined ? g : e.add(prior, g));
  };
  const factsOf = (value: string): ValueFacts => {
    const f = facts.get(value);
    if (!f) throw new ShapeError(`no facts for '${value}'`);
    return f;
  };
  for (const node of [...activity.nodes].reverse()) {
    const gradOut = node.outputs.map((o) => grads.get(o));
    if (gradOut.every((g) => g === undefined)) continue;
    e.scope(`${node.name || node.opType}/grad`);
    const ctx: VjpContext = {
      node,
      opset: pass.opset,
      e,
      dims: (value) => {
        const dims = factsOf(value).dims;
        if (!dims) throw new ShapeError(`the shape of '${value}' (read by ${node.opType} '${node.name}') is not known statically`);
        return dims;
      },
      elemType: (value) => factsOf(value).elemType,
      constant: (value) => facts.get(value)?.value,
      // Every forward value is kept; a recomputing backward would hand out copies here.
      fwd: (value) => value,
      gradOut,
      needs: activity.needs.get(node)!,
      unsupported: (reason) => {
        throw new UnsupportedOpError(node.opType, node.name, reason);
      },
    };
    const results = rules.get(node.opType)!.vjp(ctx);
    results.forEach((g, i) => {
      if (g !== undefined && ctx.needs[i]) accumulate(node.inputs[i]!, g);
    });
  }
  return grads;
}
