import { floatAttribute, intAttribute, stringAttribute } from '../../../onnx/node-builders.js';
import { attr } from '../ir.js';
import { matmulShape, parseEinsum } from '../shapes.js';
import { numel } from '../tensor.js';
import { ALL_INPUTS, upstream, type GradientRule, type VjpContext } from './rule.js';

/**
 * Products. A weight matrix's transpose is never materialised: where one operand is a plain
 * matrix (every linear layer) the backward is a Gemm with transB/transA over the flattened
 * batch, which reads the stored weight as it is (a Transpose of an initialiser would be folded
 * by ONNX Runtime into a second copy of every weight).
 */

const swapLast = (rank: number): number[] => Array.from({ length: rank }, (_, i) => (i === rank - 2 ? rank - 1 : i === rank - 1 ? rank - 2 : i));

function matmul(ctx: VjpContext): Array<string | undefined> {
  const { e, node } = ctx;
  const [A, B] = node.inputs as [string, string];
  const a = ctx.dims(A);
  const b = ctx.dims(B);
  // numpy promotes 1-D operands to matrices and drops the added axis again: undone with reshapes.
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const y2 = matmulShape(a2, b2);
  const g = a.length === 1 || b.length === 1 ? e.reshape(upstream(ctx), y2) : upstream(ctx);
  const av = a.length === 1 ? e.reshape(ctx.fwd(A), a2) : ctx.fwd(A);
  const bv = b.length === 1 ? e.reshape(ctx.fwd(B), b2) : ctx.fwd(B);
  const [K, N] = [b2[b2.length - 2]!, b2[b2.length - 1]!];
  const rows = numel(y2) / N;
  let gA: string | undefined;
  let gB: string | undefined;
  if (ctx.needs[0]) {
    gA =
      b2.length === 2
        ? e.reshape(e.op1('Gemm', [e.reshape(g, [rows, N]), bv], [intAttribute('transB', 1)]), a2)
        : e.unbroadcast(e.op1('MatMul', [g, e.transpose(bv, swapLast(b2.length))]), [...y2.slice(0, -1), K], a2);
    if (a.length === 1) gA = e.reshape(gA, a);
  }
  if (ctx.needs[1]) {
    gB =
      a2.length === 2 || b2.length !== 2
        ? e.unbroadcast(e.op1('MatMul', [e.transpose(av, swapLast(a2.length)), g]), [...y2.slice(0, -2), K, N], b2)
        : e.op1('Gemm', [e.reshape(av, [rows, K]), e.reshape(g, [rows, N])], [intAttribute('transA', 1)]);
    if (b.length === 1) gB = e.reshape(gB, b);
  }
  return [gA, gB];
}

/** Y = alpha·A'·B' + beta·C with A' = transA ? Aᵀ : A (and B' likewise). */
function gemm(ctx: VjpContext): Array<string | undefined> {
  const { e, node } = ctx;
  const [A, B, C] = node.inputs.map((v) => (v ? ctx.fwd(v) : v)) as [string, string, string | undefined];
  const g = upstream(ctx);
  const alpha = attr.float(node, 'alpha', 1);
  const beta = attr.float(node, 'beta', 1);
  const transA = attr.int(node, 'transA', 0);
  const transB = attr.int(node, 'transB', 0);
  const product = (x: string, y: string, ta: number, tb: number) =>
    e.op1('Gemm', [x, y], [intAttribute('transA', ta), intAttribute('transB', tb), floatAttribute('alpha', alpha)]);
  const gA = ctx.needs[0] ? (transA ? product(B, g, transB, 1) : product(g, B, 0, 1 - transB)) : undefined;
  const gB = ctx.needs[1] ? (transB ? product(g, A, 1, transA) : product(A, g, 1 - transA, 0)) : undefined;
  let gC: string | undefined;
  if (C !== undefined && ctx.needs[2]) {
    const scaled = beta === 1 ? g : e.mul(g, e.scalar(beta, ctx.elemType(node.outputs[0]!)));
    gC = e.unbroadcast(scaled, ctx.dims(node.outputs[0]!), ctx.dims(node.inputs[2]!));
  }
  return [gA, gB, gC];
}

/**
 * Explicit-subscript Einsum: operand i's gradient is the einsum of the upstream gradient with
 * the other operands into i's subscripts. Letters only operand i has were summed in the
 * forward, so their gradient is a broadcast; size-1 axes broadcast against others are summed.
 */
function einsum(ctx: VjpContext): Array<string | undefined> {
  const { e, node } = ctx;
  const parsed = parseEinsum(attr.string(node, 'equation', ''));
  if (!parsed) ctx.unsupported('only explicit equations (with ->, no ellipsis) have a rule');
  const { inputs, output } = parsed;
  const size = new Map<string, number>();
  inputs.forEach((sub, k) => [...sub].forEach((c, i) => size.set(c, Math.max(size.get(c) ?? 1, ctx.dims(node.inputs[k]!)[i]!))));
  return inputs.map((sub, i) => {
    if (!ctx.needs[i]) return undefined;
    if (new Set(sub).size !== sub.length) ctx.unsupported(`operand ${i} repeats a subscript (a diagonal)`);
    const others = inputs.filter((_, j) => j !== i);
    const elsewhere = new Set([...output, ...others.join('')]);
    const kept = [...sub].filter((c) => elsewhere.has(c)).join('');
    const operands = [upstream(ctx), ...node.inputs.filter((_, j) => j !== i).map((v) => ctx.fwd(v))];
    let grad = e.op1('Einsum', operands, [stringAttribute('equation', `${[output, ...others].join(',')}->${kept}`)]);
    const full = [...sub].map((c) => size.get(c)!);
    if (kept.length !== sub.length) grad = e.expand(e.reshape(grad, [...sub].map((c) => (elsewhere.has(c) ? size.get(c)! : 1))), full);
    return e.unbroadcast(grad, full, ctx.dims(node.inputs[i]!));
  });
}

export const LINEAR_RULES: Record<string, GradientRule> = {
  MatMul: { differentiable: ALL_INPUTS, vjp: matmul },
  Gemm: { differentiable: ALL_INPUTS, vjp: gemm },
  Einsum: { differentiable: ALL_INPUTS, vjp: einsum },
};
