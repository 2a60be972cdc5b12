import { DiffuseError, UsageError } from '../errors.js';

/** The training data or a training setting cannot be used (empty folder, an existing token, ...): exit 2. */
export class TrainInputError extends UsageError {}

/** A run could not go on (a model the trainer cannot differentiate, a state that does not fit): exit 1. */
export class TrainError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 1, options);
  }
}
