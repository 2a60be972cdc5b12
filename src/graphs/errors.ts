import { DiffuseError } from '../errors.js';

/**
 * A checkpoint the user gave that cannot be converted: not a weight file, malformed or hostile,
 * incomplete, or of a model family diffuse does not build. Exit 2: the file is the problem, and
 * the message names it and says what to do.
 */
export class CheckpointError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 2, options);
  }
}

/** Converting failed for a reason outside the checkpoint (disk full, an unwritable cache). */
export class ConversionError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 1, options);
  }
}
