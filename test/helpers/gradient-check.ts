import * as ort from 'onnxruntime-node';
import { buildGradientGraph, type GradientGraph } from '../../src/train/autodiff/gradient-graph.js';
import { DataType } from '../../src/train/autodiff/tensor.js';
import { normals } from './random.js';

/**
 * Checks a gradient graph against the forward graph it came from, with the forward run in
 * ONNX Runtime as the only reference:
 *  - finite differences: for coordinates of each differentiated input, the central difference
 *    (s(x + h·e_i) − s(x − h·e_i)) / 2h of s(x) = ⟨u, f(x)⟩ against the gradient's coordinate;
 *    error = max |fd − grad| / max |grad|;
 *  - the adjoint (dot-product) identity ⟨J v, u⟩ = ⟨v, Jᵀ u⟩ for a random direction v, with
 *    J v from central differences (exact up to rounding when f is affine in the inputs: then
 *    h = 1 is used); error = |⟨Jv,u⟩ − ⟨v,Jᵀu⟩| / (‖Jv‖·‖u‖).
 */

export interface Feed {
  data: ArrayLike<number>;
  dims: readonly number[];
  /** float32 unless given (float64, int64, bool). */
  elemType?: number;
}

export interface CheckResult {
  /** Finite-difference error, relative to the largest gradient entry. */
  fd: number;
  /** Adjoint identity error, relative to ‖Jv‖·‖u‖. */
  adjoint: number;
  graph: GradientGraph;
}

function tensor(feed: Feed): ort.Tensor {
  switch (feed.elemType ?? DataType.FLOAT) {
    case DataType.DOUBLE:
      return new ort.Tensor('float64', Float64Array.from(feed.data), feed.dims);
    case DataType.INT64:
      return new ort.Tensor('int64', BigInt64Array.from(Array.from(feed.data, (v) => BigInt(v))), feed.dims);
    case DataType.INT32:
      return new ort.Tensor('int32', Int32Array.from(feed.data), feed.dims);
    case DataType.BOOL:
      return new ort.Tensor('bool', Uint8Array.from(feed.data), feed.dims);
    default:
      return new ort.Tensor('float32', Float32Array.from(feed.data), feed.dims);
  }
}

const session = (model: Uint8Array) => ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1, logSeverityLevel: 3 });

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

export interface CheckOptions {
  model: Uint8Array;
  feeds: Record<string, Feed>;
  wrt: readonly string[];
  /** The differentiated output (the first graph output by default). */
  output?: string;
  /** Finite-difference step (1e-4 in float64, 1e-2 in float32 by default). */
  h?: number;
  /** The graph is affine in `wrt`: the adjoint check takes h = 1. */
  affine?: boolean;
  /** At most this many coordinates per input are differenced (a fixed spread of them). */
  maxCoordinates?: number;
  seed?: number;
  pinShapes?: Record<string, number[]>;
}

export async function checkGradient(options: CheckOptions): Promise<CheckResult> {
  const forward = await session(options.model);
  const output = options.output ?? forward.outputNames[0]!;
  const graph = buildGradientGraph(options.model, { wrt: options.wrt, outputs: [output], ...(options.pinShapes ? { pinShapes: options.pinShapes } : {}) });
  const backward = await session(graph.model);
  const double = (options.feeds[options.wrt[0]!]!.elemType ?? DataType.FLOAT) === DataType.DOUBLE;
  const h = options.h ?? (double ? 1e-4 : 1e-2);
  const seed = options.seed ?? 1;
  try {
    const base = Object.fromEntries(Object.entries(options.feeds).map(([k, f]) => [k, tensor(f)]));
    const outDims = graph.outputs.find((o) => o.name === output)!.dims;
    const u = normals(outDims.reduce((a, b) => a * b, 1), seed + 100);
    const uFeed: Feed = { data: u, dims: outDims, elemType: double ? DataType.DOUBLE : DataType.FLOAT };
    const run = await backward.run({ ...Object.fromEntries(graph.inputs.filter((i) => base[i.name]).map((i) => [i.name, base[i.name]!])), [graph.seeds[output]!]: tensor(uFeed) });
    const grads = Object.fromEntries(options.wrt.map((w) => [w, run[graph.gradOutputs[w]!]!.data as Float32Array | Float64Array]));
    const f = async (shifted: Record<string, ArrayLike<number>>): Promise<ArrayLike<number>> => {
      const feeds = { ...base };
      for (const [k, data] of Object.entries(shifted)) feeds[k] = tensor({ ...options.feeds[k]!, data });
      return (await forward.run(feeds))[output]!.data as Float32Array | Float64Array;
    };
    // Steps as the input's type stores them, so the difference divides by the step really taken.
    const stored = (x: number) => (double ? x : Math.fround(x));
    const shift = (w: string, delta: (i: number) => number): Float64Array => Float64Array.from(options.feeds[w]!.data, (x, i) => stored(x + delta(i)));
    // Finite differences, coordinate by coordinate.
    let fdErr = 0;
    let scale = 0;
    for (const w of options.wrt) {
      const n = options.feeds[w]!.data.length;
      const count = Math.min(n, options.maxCoordinates ?? 48);
      for (let k = 0; k < count; k++) {
        const i = Math.floor((k * n) / count);
        const up = shift(w, (j) => (j === i ? h : 0));
        const down = shift(w, (j) => (j === i ? -h : 0));
        const difference = dot(u, await f({ [w]: up })) - dot(u, await f({ [w]: down }));
        fdErr = Math.max(fdErr, Math.abs(difference / (up[i]! - down[i]!) - grads[w]![i]!));
      }
      scale = Math.max(scale, ...Array.from(grads[w]!, Math.abs));
    }
    // Adjoint identity along one random direction per input.
    const hv = options.affine ? 1 : h;
    const v = Object.fromEntries(options.wrt.map((w, k) => [w, normals(options.feeds[w]!.data.length, seed + 200 + k)]));
    const plus = await f(Object.fromEntries(options.wrt.map((w) => [w, shift(w, (i) => hv * v[w]![i]!)])));
    const minus = await f(Object.fromEntries(options.wrt.map((w) => [w, shift(w, (i) => -hv * v[w]![i]!)])));
    const jv = Float64Array.from(plus, (p, i) => (p - minus[i]!) / (2 * hv));
    const lhs = dot(jv, u);
    const rhs = options.wrt.reduce((s, w) => s + dot(v[w]!, grads[w]!), 0);
    const adjoint = Math.abs(lhs - rhs) / (Math.sqrt(dot(jv, jv) * dot(u, u)) || 1);
    return { fd: fdErr / (scale || 1), adjoint, graph };
  } finally {
    await Promise.all([forward.release(), backward.release()]);
  }
}
