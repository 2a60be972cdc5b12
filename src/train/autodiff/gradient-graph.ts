import { makeNode, intAttribute } from '../../onnx/node-builders.js';
import { externalDataLocations } from '../../onnx/initializers.js';
import { findActivity, variedValues } from './activity.js';
import { analyze, analyzeNodes, pinInputShapes } from './analyze.js';
import { assemble, type TensorSpec } from './assemble.js';
import { emitBackward } from './backward.js';
import { Emitter } from './emitter.js';
import { AutodiffError, GradientRequestError, PrecisionError } from './errors.js';
import { irNodeOf, readGraph, type IrGraph, type IrNode } from './ir.js';
import { GRADIENT_RULES } from './rules/index.js';
import { DIFFERENTIABLE_TYPES, FLOAT_TYPES } from './tensor.js';

/**
 * Reverse-mode differentiation of an ONNX graph into one forward+backward graph of standard
 * ai.onnx ops, which ONNX Runtime runs for inference on any provider:
 *
 *   inputs:  the forward inputs it still reads (shapes pinned), and per differentiated output
 *            `<output>_grad`, the upstream gradient the caller feeds (or, with `loss`, the
 *            target `<output>_target`);
 *   outputs: the differentiated forward outputs (and `loss`), then `<input>_grad` per `wrt`.
 *
 * Weights are constants: only gradients of graph inputs are built. Shapes are fixed when the
 * graph is built (pinShapes), which folds the exports' shape arithmetic into constants and lets
 * broadcasting be undone statically. The result is bytes of a model whose external-data weights
 * still point at the source's data files, so it is written next to them (cachedModelEdit does
 * that with hard links, keyed by the source's hash and these options).
 */

export interface MeanSquaredErrorLoss {
  kind: 'mse';
  /** The graph output compared with `<output>_target`: loss = mean((output − target)²), as torch's F.mse_loss. */
  output: string;
}

export interface GradientGraphOptions {
  /** Graph inputs to differentiate with respect to (float32 or float64). */
  wrt: readonly string[];
  /**
   * Outputs whose upstream gradient the caller feeds as `<output>_grad` (default: every float
   * output that depends on `wrt`). Not used with `loss`.
   */
  outputs?: readonly string[];
  /** Builds the loss into the graph: a scalar output `loss`, differentiated with seed 1. */
  loss?: MeanSquaredErrorLoss;
  /** Static shapes of inputs whose declared shapes have symbolic dimensions. */
  pinShapes?: Readonly<Record<string, readonly number[]>>;
}

/** Everything about a built graph but its bytes (JSON-able: a cache entry's record). */
export interface GradientGraphInfo {
  /** What to feed, in order: forward inputs still read, then seeds or the loss target. */
  inputs: TensorSpec[];
  /** What it returns: the kept forward outputs, then the gradients. */
  outputs: TensorSpec[];
  /** Per differentiated output, the input its upstream gradient is fed to. */
  seeds: Record<string, string>;
  /** With `loss`: the target input and the scalar loss output. */
  loss?: { target: string; output: string };
  /** Per `wrt` input, the output holding its gradient. */
  gradOutputs: Record<string, string>;
  /** Files (relative to the model's folder) the combined graph reads weights from: link them beside it. */
  externalData: string[];
  stats: { forwardNodes: number; differentiatedNodes: number; foldedNodes: number; nodes: number };
}

export interface GradientGraph extends GradientGraphInfo {
  model: Uint8Array;
}

export const LOSS_OUTPUT = 'loss';

/** Part of a cache key for built graphs (with the source's hash and the options): bumped when the same options build a different graph. */
export const GRADIENT_GRAPH_VERSION = 1;

function allNames(graph: IrGraph): Set<string> {
  return new Set([
    ...graph.inputs.map((i) => i.name),
    ...graph.outputs.map((o) => o.name),
    ...graph.initializers.keys(),
    ...graph.nodes.flatMap((n) => [...n.inputs, ...n.outputs, n.name]),
  ]);
}

function checkRequest(graph: IrGraph, options: GradientGraphOptions): void {
  if (graph.opset < 13) throw new AutodiffError(`the model imports ai.onnx opset ${graph.opset}; gradients are built for opset 13 and later`);
  const inputs = new Map(graph.inputs.map((i) => [i.name, i]));
  if (options.wrt.length === 0) throw new GradientRequestError('nothing to differentiate with respect to (wrt is empty)');
  for (const name of options.wrt) {
    const input = inputs.get(name);
    if (!input) throw new GradientRequestError(`'${name}' is not a graph input (inputs: ${[...inputs.keys()].join(', ')})`);
    if (FLOAT_TYPES.has(input.elemType) && !DIFFERENTIABLE_TYPES.has(input.elemType)) throw new PrecisionError(name, 'the input is float16');
    if (!DIFFERENTIABLE_TYPES.has(input.elemType)) throw new GradientRequestError(`input '${name}' is not a float tensor; only float32 and float64 inputs have gradients`);
  }
  const outputs = new Set(graph.outputs.map((o) => o.name));
  for (const name of [...(options.outputs ?? []), ...(options.loss ? [options.loss.output] : [])]) {
    if (!outputs.has(name)) throw new GradientRequestError(`'${name}' is not a graph output (outputs: ${[...outputs].join(', ')})`);
  }
}

/** loss = ReduceMean((output − target)²) over all axes: plain forward nodes, differentiated by the rules. */
function lossNodes(output: string, target: string): IrNode[] {
  const diff = `${LOSS_OUTPUT}/difference`;
  const square = `${LOSS_OUTPUT}/square`;
  return [
    irNodeOf(makeNode('Sub', `${LOSS_OUTPUT}/Sub`, [output, target], [diff])),
    irNodeOf(makeNode('Mul', `${LOSS_OUTPUT}/Mul`, [diff, diff], [square])),
    irNodeOf(makeNode('ReduceMean', `${LOSS_OUTPUT}/ReduceMean`, [square], [LOSS_OUTPUT], [intAttribute('keepdims', 0)])),
  ];
}

export function buildGradientGraph(model: Uint8Array, options: GradientGraphOptions): GradientGraph {
  const graph = readGraph(model);
  checkRequest(graph, options);
  const names = allNames(graph);
  const claim = (name: string): string => {
    if (names.has(name)) throw new GradientRequestError(`the graph already has a value named '${name}'`);
    names.add(name);
    return name;
  };
  const analysis = analyze(graph, pinInputShapes(graph, options.pinShapes ?? {}));
  const { facts, folded } = analysis;
  let target: string | undefined;
  if (options.loss) {
    // The target takes the output's (now static) shape; the loss nodes join the forward graph.
    target = claim(`${options.loss.output}_target`);
    claim(LOSS_OUTPUT);
    const { elemType, dims } = facts.get(options.loss.output)!;
    facts.set(target, { elemType, ...(dims ? { dims } : {}) });
    const loss = lossNodes(options.loss.output, target);
    analyzeNodes(analysis, loss, graph.opset);
    graph.nodes.push(...loss);
  }
  const varied = variedValues(graph.nodes, facts, folded, options.wrt, GRADIENT_RULES);
  const targets = options.loss ? [LOSS_OUTPUT] : options.outputs ?? graph.outputs.filter((o) => DIFFERENTIABLE_TYPES.has(o.elemType) && varied.has(o.name)).map((o) => o.name);
  if (targets.length === 0) throw new GradientRequestError(`no output depends on ${options.wrt.join(', ')}`);
  const activity = findActivity(graph.nodes, facts, folded, options.wrt, targets, GRADIENT_RULES);
  const spec = (name: string, as = name): TensorSpec => {
    const f = facts.get(name)!;
    if (!f.dims) throw new AutodiffError(`the shape of '${name}' is not known statically`);
    return { name: as, elemType: f.elemType, dims: f.dims };
  };
  const e = new Emitter(graph.opset, (n) => names.has(n));
  const seeds = new Map<string, string>();
  if (options.loss) seeds.set(LOSS_OUTPUT, e.scalar(1, facts.get(LOSS_OUTPUT)!.elemType));
  const seedInputs: TensorSpec[] = options.loss ? [] : targets.map((o) => spec(o, claim(`${o}_grad`)));
  seedInputs.forEach((s, k) => seeds.set(targets[k]!, s.name));
  const grads = emitBackward(e, { activity, facts, rules: GRADIENT_RULES, opset: graph.opset, seeds });
  e.scope('autodiff');
  const gradOutputs: Record<string, string> = {};
  for (const w of options.wrt) {
    const name = claim(`${w}_grad`);
    const f = spec(w);
    e.named('Identity', [grads.get(w) ?? e.zeros(f.dims, f.elemType)], name);
    gradOutputs[w] = name;
  }
  const forwardOutputs = options.loss ? [options.loss.output, LOSS_OUTPUT] : targets;
  const outputs = [...forwardOutputs.map((o) => spec(o)), ...options.wrt.map((w) => spec(w, gradOutputs[w]))];
  const forwardInputs = graph.inputs.filter((i) => facts.get(i.name)?.dims).map((i) => spec(i.name));
  const assembled = assemble({
    graph,
    facts,
    folded,
    extraNodes: e.nodes,
    extraInitializers: e.initializers,
    inputs: [...forwardInputs, ...(target ? [spec(target)] : []), ...seedInputs],
    keepInputs: new Set([...options.wrt, ...seedInputs.map((s) => s.name), ...(target ? [target] : [])]),
    outputs,
  });
  const info: GradientGraphInfo = {
    inputs: assembled.inputs,
    outputs,
    seeds: Object.fromEntries([...seeds].filter(([o]) => o !== LOSS_OUTPUT)),
    ...(target ? { loss: { target, output: LOSS_OUTPUT } } : {}),
    gradOutputs,
    externalData: externalDataLocations(graph.proto.graph),
    stats: { forwardNodes: graph.nodes.length, differentiatedNodes: activity.nodes.length, foldedNodes: folded.size, nodes: assembled.nodes },
  };
  return { model: assembled.model, ...info };
}
