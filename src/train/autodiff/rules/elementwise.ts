import { intAttribute } from '../../../onnx/node-builders.js';
import { attr } from '../ir.js';
import { DIFFERENTIABLE_TYPES } from '../tensor.js';
import { ALL_INPUTS, FIRST_INPUT, upstream, type GradientRule, type VjpContext } from './rule.js';

/**
 * Elementwise ops. Binary ones broadcast numpy-style, so each operand's gradient is the
 * product rule's term summed back over the axes its broadcast stretched. Unary derivatives are
 * written with the output where that is cheaper (sigmoid, tanh, exp, sqrt) since it is kept anyway.
 */

/** The gradient of operand `i` of a broadcasting op, given its full-size term. */
function back(ctx: VjpContext, i: number, term: () => string): string | undefined {
  if (!ctx.needs[i]) return undefined;
  const { node } = ctx;
  return ctx.e.unbroadcast(term(), ctx.dims(node.outputs[0]!), ctx.dims(node.inputs[i]!));
}

const x = (ctx: VjpContext) => ctx.fwd(ctx.node.inputs[0]!);
const y = (ctx: VjpContext) => ctx.fwd(ctx.node.outputs[0]!);
const typeOf = (ctx: VjpContext) => ctx.elemType(ctx.node.outputs[0]!);
const k = (ctx: VjpContext, value: number) => ctx.e.scalar(value, typeOf(ctx));

/** A unary rule g ↦ g · f'(x), with f' built from x, y and constants. */
function unary(derivative: (ctx: VjpContext) => string): GradientRule {
  return { differentiable: FIRST_INPUT, vjp: (ctx) => [ctx.e.mul(upstream(ctx), derivative(ctx))] };
}

const binary: Record<string, GradientRule> = {
  Add: { differentiable: ALL_INPUTS, vjp: (ctx) => [0, 1].map((i) => back(ctx, i, () => upstream(ctx))) },
  Sub: {
    differentiable: ALL_INPUTS,
    vjp: (ctx) => [back(ctx, 0, () => upstream(ctx)), back(ctx, 1, () => ctx.e.neg(upstream(ctx)))],
  },
  Mul: {
    differentiable: ALL_INPUTS,
    vjp: (ctx) => {
      const [a, b] = ctx.node.inputs.map((v) => ctx.fwd(v));
      return [back(ctx, 0, () => ctx.e.mul(upstream(ctx), b!)), back(ctx, 1, () => ctx.e.mul(upstream(ctx), a!))];
    },
  },
  Div: {
    differentiable: ALL_INPUTS,
    // d(a/b)/db = -(a/b)/b: the output, already kept, instead of a second division by b².
    vjp: (ctx) => {
      const b = ctx.fwd(ctx.node.inputs[1]!);
      return [back(ctx, 0, () => ctx.e.div(upstream(ctx), b)), back(ctx, 1, () => ctx.e.neg(ctx.e.div(ctx.e.mul(upstream(ctx), y(ctx)), b)))];
    },
  },
  Pow: {
    differentiable: ALL_INPUTS,
    vjp: (ctx) => {
      const { e, node } = ctx;
      const [a, b] = node.inputs.map((v) => ctx.fwd(v)) as [string, string];
      const exponent = ctx.constant(node.inputs[1]!);
      const baseTerm = (): string => {
        const g = upstream(ctx);
        // The exports' x^2 (variance) and x^0.5: no Pow in the backward.
        if (exponent?.data.length === 1) {
          const c = exponent.data[0]!;
          if (c === 1) return g;
          if (c === 2) return e.mul(g, e.mul(a, k(ctx, 2)));
          return e.mul(g, e.mul(k(ctx, c), e.op1('Pow', [a, k(ctx, c - 1)])));
        }
        const bt = DIFFERENTIABLE_TYPES.has(ctx.elemType(node.inputs[1]!)) ? b : e.op1('Cast', [b], [intAttribute('to', typeOf(ctx))]);
        return e.mul(g, e.mul(bt, e.op1('Pow', [a, e.sub(bt, k(ctx, 1))])));
      };
      return [back(ctx, 0, baseTerm), back(ctx, 1, () => e.mul(upstream(ctx), e.mul(y(ctx), e.op1('Log', [a]))))];
    },
  },
  Sum: { differentiable: ALL_INPUTS, vjp: (ctx) => ctx.node.inputs.map((_, i) => back(ctx, i, () => upstream(ctx))) },
  Where: {
    differentiable: () => [1, 2],
    vjp: (ctx) => {
      const cond = ctx.fwd(ctx.node.inputs[0]!);
      const zero = k(ctx, 0);
      return [undefined, back(ctx, 1, () => ctx.e.op1('Where', [cond, upstream(ctx), zero])), back(ctx, 2, () => ctx.e.op1('Where', [cond, zero, upstream(ctx)]))];
    },
  },
};

const unaryRules: Record<string, GradientRule> = {
  // d sqrt(x) = 1 / (2 sqrt(x))
  Sqrt: { differentiable: FIRST_INPUT, vjp: (ctx) => [ctx.e.div(ctx.e.mul(upstream(ctx), k(ctx, 0.5)), y(ctx))] },
  Exp: unary(y),
  Log: { differentiable: FIRST_INPUT, vjp: (ctx) => [ctx.e.div(upstream(ctx), x(ctx))] },
  Neg: { differentiable: FIRST_INPUT, vjp: (ctx) => [ctx.e.neg(upstream(ctx))] },
  Identity: { differentiable: FIRST_INPUT, vjp: (ctx) => [upstream(ctx)] },
  // erf'(x) = 2/√π · exp(−x²)
  Erf: unary((ctx) => ctx.e.mul(k(ctx, 2 / Math.sqrt(Math.PI)), ctx.e.op1('Exp', [ctx.e.neg(ctx.e.mul(x(ctx), x(ctx)))]))),
  Sigmoid: unary((ctx) => ctx.e.mul(y(ctx), ctx.e.sub(k(ctx, 1), y(ctx)))),
  Tanh: unary((ctx) => ctx.e.sub(k(ctx, 1), ctx.e.mul(y(ctx), y(ctx)))),
  Sin: unary((ctx) => ctx.e.op1('Cos', [x(ctx)])),
  Cos: unary((ctx) => ctx.e.neg(ctx.e.op1('Sin', [x(ctx)]))),
  Reciprocal: unary((ctx) => ctx.e.neg(ctx.e.mul(y(ctx), y(ctx)))),
  Abs: unary((ctx) => ctx.e.op1('Sign', [x(ctx)])),
  // Relu's derivative at 0 is taken as 0, as torch does.
  Relu: {
    differentiable: FIRST_INPUT,
    vjp: (ctx) => [ctx.e.op1('Where', [ctx.e.op1('Greater', [x(ctx), k(ctx, 0)]), upstream(ctx), k(ctx, 0)])],
  },
  Softplus: unary((ctx) => ctx.e.op1('Sigmoid', [x(ctx)])),
  // Exact gelu: Φ(x) + x·φ(x).
  Gelu: unary((ctx) => {
    if (attr.string(ctx.node, 'approximate', 'none') !== 'none') ctx.unsupported("only approximate='none' has a rule");
    const { e } = ctx;
    const cdf = e.mul(k(ctx, 0.5), e.add(k(ctx, 1), e.op1('Erf', [e.mul(x(ctx), k(ctx, Math.SQRT1_2))])));
    const pdf = e.mul(k(ctx, 1 / Math.sqrt(2 * Math.PI)), e.op1('Exp', [e.mul(e.mul(x(ctx), x(ctx)), k(ctx, -0.5))]));
    return e.add(cdf, e.mul(x(ctx), pdf));
  }),
  Cast: {
    differentiable: FIRST_INPUT,
    vjp: (ctx) => {
      const from = ctx.elemType(ctx.node.inputs[0]!);
      return [from === typeOf(ctx) ? upstream(ctx) : ctx.e.op1('Cast', [upstream(ctx)], [intAttribute('to', from)])];
    },
  },
};

export const ELEMENTWISE_RULES: Record<string, GradientRule> = { ...binary, ...unaryRules };
