import { PrecisionError, UnsupportedOpError } from './errors.js';
import type { IrNode } from './ir.js';
import type { GradientRule } from './rules/rule.js';
import type { ValueFacts } from './shapes.js';
import { DataType, FLOAT_TYPES } from './tensor.js';

/**
 * Activity analysis: a node is differentiated only if it lies on a path from a requested input
 * to a differentiated output — "varied" (it depends on an input through a differentiable edge:
 * not a Shape, an index, a condition, a cast to integers) and "useful" (an output depends on
 * it). Everything else (the timestep embedding, masks, weights) is computed by the forward
 * only. Nodes on the path must have a rule and compute in float32 or float64.
 */
export interface Activity {
  /** The nodes to differentiate, in forward order. */
  nodes: IrNode[];
  /** Per node, which inputs need a gradient. */
  needs: Map<IrNode, boolean[]>;
}

const HALF_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT16, DataType.BFLOAT16]);

function refusal(node: IrNode): UnsupportedOpError {
  if (node.domain === 'com.microsoft' && node.opType === 'MultiHeadAttention') {
    return new UnsupportedOpError(`${node.domain}.${node.opType}`, node.name, 'fused attention has no rule; differentiate the unfused graph (--attention plain)');
  }
  if (node.domain !== '' && node.domain !== 'ai.onnx') return new UnsupportedOpError(`${node.domain}.${node.opType}`, node.name, 'ops outside ai.onnx have no rule');
  return new UnsupportedOpError(node.opType, node.name);
}

const ruleOf = (rules: ReadonlyMap<string, GradientRule>, node: IrNode) => (node.domain === '' || node.domain === 'ai.onnx' ? rules.get(node.opType) : undefined);

/** Inputs a gradient can flow through; for ops without a rule, all (so that they are refused if on the path). */
const differentiable = (rules: ReadonlyMap<string, GradientRule>, node: IrNode): ReadonlySet<number> =>
  new Set(ruleOf(rules, node)?.differentiable(node) ?? node.inputs.map((_, i) => i));

/** Float outputs, and outputs of ops whose type is not known here (so that they are refused rather than passed over). */
const mayCarryGradient = (elemType: number): boolean => elemType === 0 || FLOAT_TYPES.has(elemType);

/** The float values that depend on `wrt` through differentiable edges. */
export function variedValues(
  nodes: readonly IrNode[],
  facts: ReadonlyMap<string, ValueFacts>,
  folded: ReadonlySet<IrNode>,
  wrt: readonly string[],
  rules: ReadonlyMap<string, GradientRule>,
): Set<string> {
  const varied = new Set(wrt);
  for (const node of nodes) {
    if (folded.has(node)) continue;
    const through = differentiable(rules, node);
    if (!node.inputs.some((v, i) => v !== '' && through.has(i) && varied.has(v)) && !node.implicitInputs.some((v) => varied.has(v))) continue;
    for (const out of node.outputs) if (out !== '' && mayCarryGradient(facts.get(out)?.elemType ?? 0)) varied.add(out);
  }
  return varied;
}

export function findActivity(
  nodes: readonly IrNode[],
  facts: ReadonlyMap<string, ValueFacts>,
  folded: ReadonlySet<IrNode>,
  wrt: readonly string[],
  targets: readonly string[],
  rules: ReadonlyMap<string, GradientRule>,
): Activity {
  const varied = variedValues(nodes, facts, folded, wrt, rules);
  const useful = new Set(targets);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k]!;
    if (node.outputs.some((o) => useful.has(o))) for (const v of [...node.inputs, ...node.implicitInputs]) useful.add(v);
  }
  const active = nodes.filter((n) => !folded.has(n) && n.outputs.some((o) => varied.has(o) && useful.has(o)));
  const needs = new Map<IrNode, boolean[]>();
  for (const node of active) {
    if (!ruleOf(rules, node)) throw refusal(node);
    for (const v of [...node.inputs, ...node.outputs]) {
      if (v !== '' && HALF_TYPES.has(facts.get(v)?.elemType ?? 0)) throw new PrecisionError(node.name, `${node.opType} ${node.outputs.includes(v) ? 'output' : 'input'} '${v}' is float16`);
    }
    const through = differentiable(rules, node);
    needs.set(
      node,
      node.inputs.map((v, i) => v !== '' && through.has(i) && varied.has(v) && useful.has(v)),
    );
  }
  return { nodes: active, needs };
}
