import { DiffuseError } from '../errors.js';

/** A textual-inversion embedding file that cannot be used: malformed, hostile, or made for another model. */
export class EmbeddingError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 1, options);
  }
}
