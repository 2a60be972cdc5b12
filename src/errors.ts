/**
 * Every failure a user can cause or meet is one of these: a message written for the user (what is
 * wrong, what to do) and the exit code the CLI ends with. The single handler in src/cli.ts prints
 * the message as one line; stack traces appear only with --verbose.
 */
export class DiffuseError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad flags, values or arguments: exit 2, like commander's own usage errors. */
export class UsageError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 2, options);
  }
}

/** A model folder or one of its parts is missing or unusable. */
export class ModelLoadError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 1, options);
  }
}

/** Reading an input image or writing an output failed. */
export class ImageIOError extends DiffuseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 1, options);
  }
}

export function describeCause(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? String(err);
  return String(err);
}
