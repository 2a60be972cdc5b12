import { DiffuseError } from '../errors.js';

/** A prompt that AUTOMATIC1111 itself rejects with an exception (it would stop the generation there too). */
export class PromptError extends DiffuseError {
  constructor(message: string) {
    super(message, 2);
  }
}
