import { keepInitializers } from './initializers.js';
import type { GraphProto, NodeProto } from './proto.js';

/**
 * Removes what the graph's outputs do not depend on: nodes, graph inputs and initialisers, so a
 * session opened on the result neither runs nor loads them. Node order is kept (it was
 * topological). Values a control-flow subgraph reads from the outer scope count as read.
 */
export function pruneToOutputs(graph: GraphProto): { kept: number; removed: number } {
  const needed = new Set(graph.outputs.map((o) => o.name));
  const nodes = graph.nodes;
  const kept = new Set<NodeProto['msg']>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!node.outputs.some((o) => needed.has(o))) continue;
    kept.add(node.msg);
    for (const input of [...node.inputs, ...subgraphReads(node)]) if (input !== '') needed.add(input);
  }
  graph.filter({ node: (n) => kept.has(n.msg), input: (i) => needed.has(i.name) });
  keepInitializers(graph, (name) => needed.has(name));
  return { kept: kept.size, removed: nodes.length - kept.size };
}

function subgraphReads(node: NodeProto): string[] {
  return node.attributes.flatMap((a) => a.subgraphs.flatMap((g) => g.nodes.flatMap((n) => [...n.inputs, ...subgraphReads(n)])));
}
