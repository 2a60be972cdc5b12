import { AutodiffError, GradientRequestError, ShapeError } from './errors.js';
import { CONST_LIMIT, type IrGraph, type IrNode } from './ir.js';
import { foldNode } from './fold.js';
import { inferNode, type ValueFacts } from './shapes.js';
import { decodeTensor } from './tensor.js';

/**
 * Static facts about every value of a forward graph once its input shapes are pinned: element
 * type, shape, and the value of whatever is constant — which includes the shape arithmetic
 * exports compute from Shape nodes. Nodes whose outputs are all constant are "folded": they
 * leave the graph and their outputs become initialisers.
 */
export interface Analysis {
  facts: Map<string, ValueFacts>;
  folded: Set<IrNode>;
}

/** Each graph input's static shape: the pinned one, else the declared one if it is fully fixed. */
export function pinInputShapes(graph: IrGraph, pins: Readonly<Record<string, readonly number[]>>): Map<string, number[]> {
  const names = new Set(graph.inputs.map((i) => i.name));
  for (const name of Object.keys(pins)) {
    if (!names.has(name)) throw new GradientRequestError(`pinShapes names '${name}', which is not a graph input (inputs: ${[...names].join(', ')})`);
  }
  const read = new Set(graph.nodes.flatMap((n) => n.inputs));
  const shapes = new Map<string, number[]>();
  for (const input of graph.inputs) {
    const pinned = pins[input.name];
    const declared = input.dims;
    if (pinned) {
      const clash = declared && (declared.length !== pinned.length || declared.some((d, i) => typeof d === 'number' && d !== pinned[i]));
      if (clash) throw new GradientRequestError(`pinned shape [${pinned.join(', ')}] of '${input.name}' contradicts its declared [${declared.join(', ')}]`);
      shapes.set(input.name, [...pinned]);
    } else if (declared?.every((d) => typeof d === 'number')) {
      shapes.set(input.name, declared as number[]);
    } else if (read.has(input.name)) {
      throw new ShapeError(`input '${input.name}' has shape [${declared?.map((d) => d ?? '?').join(', ') ?? 'unknown'}]: pin it (pinShapes) so every shape is fixed`);
    }
  }
  return shapes;
}

export function analyze(graph: IrGraph, inputShapes: ReadonlyMap<string, number[]>): Analysis {
  const facts = new Map<string, ValueFacts>();
  for (const init of graph.initializers.values()) {
    const value = decodeTensor(init.msg, CONST_LIMIT);
    facts.set(init.name, { elemType: init.elemType, dims: init.dims, ...(value ? { value } : {}) });
  }
  for (const input of graph.inputs) {
    const dims = inputShapes.get(input.name);
    facts.set(input.name, { elemType: input.elemType, ...(dims ? { dims } : {}) });
  }
  const analysis = { facts, folded: new Set<IrNode>() };
  analyzeNodes(analysis, graph.nodes, graph.opset);
  return analysis;
}

/** Extends the facts over more nodes (appended after the graph's own). */
export function analyzeNodes({ facts, folded }: Analysis, nodes: readonly IrNode[], opset: number): void {
  for (const node of nodes) {
    const ins = node.inputs.map((name) => {
      if (name === '') return undefined;
      const f = facts.get(name);
      if (!f) throw new AutodiffError(`node '${node.name}' reads '${name}', which no earlier node, input or initialiser provides`);
      return f;
    });
    const outs = inferNode({ node, opset, ins });
    const values = node.opType === 'Constant' ? outs.map((o) => o.value) : foldNode(node, opset, ins, outs);
    if (values?.every((v) => v !== undefined)) {
      values.forEach((v, i) => (outs[i]!.value = v));
      folded.add(node);
    }
    node.outputs.forEach((name, i) => {
      if (name !== '') facts.set(name, outs[i] ?? { elemType: 0 });
    });
  }
}
