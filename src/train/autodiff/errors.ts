import { DiffuseError } from '../../errors.js';

/**
 * Why a graph cannot be differentiated. Each names the node (or value) at fault, since the
 * graphs are exports of thousands of nodes and "unsupported op" alone would not say where.
 */
export class AutodiffError extends DiffuseError {}

/** An op on the differentiated path that has no gradient rule (or a form of it that has none). */
export class UnsupportedOpError extends AutodiffError {
  constructor(
    readonly opType: string,
    readonly nodeName: string,
    reason = 'no gradient rule',
  ) {
    super(`cannot differentiate ${opType} node '${nodeName}': ${reason}`);
  }
}

/** float16 (or another non-float32/64 floating type) on the differentiated path. */
export class PrecisionError extends AutodiffError {
  constructor(readonly nodeName: string, detail: string) {
    super(`cannot differentiate node '${nodeName}': ${detail}; use a float32 export of the model`);
  }
}

/** A shape the gradient needs is not fixed: a graph input without a pinned shape, or an op the shape pass does not know. */
export class ShapeError extends AutodiffError {}

/** The request does not fit the graph: an unknown input or output, a name already taken. */
export class GradientRequestError extends AutodiffError {
  constructor(message: string) {
    super(message, 2);
  }
}
