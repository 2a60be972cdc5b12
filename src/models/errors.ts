import { DiffuseError } from '../errors.js';

/**
 * Failures of the model layer, each with a message written for the user (what is wrong, what to
 * do) and the exit code the CLI ends with: 2 for what the user typed, 1 for everything else.
 */
export class ModelsError extends DiffuseError {}

/** A model reference (`--model` value, `diffuse models ...` argument) that cannot be parsed. */
export class InvalidModelRefError extends ModelsError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** An id that is neither in the registry nor registered locally. */
export class UnknownModelError extends ModelsError {
  constructor(
    readonly id: string,
    known: readonly string[],
  ) {
    super(`unknown model "${id}"; known ids: ${known.join(', ')} (or pass hf:org/repo[@revision] or a folder path)`, 2);
  }
}

/** A path reference that does not exist or is not a folder. */
export class ModelPathError extends ModelsError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** The model is not in the cache and downloading was not allowed. */
export class ModelNotCachedError extends ModelsError {
  constructor(
    what: string,
    readonly pullCommand: string,
    offline: boolean,
  ) {
    super(
      offline
        ? `${what} is not in the cache and --offline forbids downloading; run \`${pullCommand}\` while online`
        : `${what} is not in the cache; run \`${pullCommand}\` to download it`,
    );
  }
}

/** models.json (or a registry given in its place) breaks the schema. */
export class RegistryError extends ModelsError {}

/** Local cache bookkeeping (manifest, local.json, `models add`) went wrong. */
export class CacheError extends ModelsError {}

/** `models add` with an unusable folder or id. */
export class LocalModelError extends ModelsError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** Talking to the Hub failed: network, HTTP status, malformed answer. */
export class HubError extends ModelsError {
  /** Worth another (resumed) attempt: 5xx, 429, and network failures that say so. */
  readonly retriable: boolean;

  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown; retriable?: boolean },
  ) {
    super(message, 1, options);
    this.retriable = options?.retriable ?? (status !== undefined && (status >= 500 || status === 429));
  }
}

/** 401/403: gated or private repo, missing or rejected token. */
export class HubAuthError extends HubError {}

/** 404 or the Hub's RepoNotFound/RevisionNotFound/EntryNotFound. */
export class HubNotFoundError extends HubError {}

/** A downloaded file does not hash to what the Hub or the registry pin says. */
export class ChecksumMismatchError extends ModelsError {
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${path} is corrupt (expected ${expected}, got ${actual}); the bad download was deleted, run the pull again`);
  }
}

/** The server named a file that would land outside the model folder (or is otherwise unsafe). */
export class UnsafePathError extends ModelsError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`refusing unsafe file name from the server ${JSON.stringify(path)}: ${reason}`);
  }
}

export class InsufficientDiskSpaceError extends ModelsError {
  constructor(
    readonly neededBytes: number,
    readonly freeBytes: number,
    dir: string,
  ) {
    super(
      `not enough disk space in ${dir}: the download needs ${formatBytes(neededBytes)} but only ${formatBytes(freeBytes)} is free (set DIFFUSE_HOME to a bigger disk)`,
    );
  }
}

/** The pull was aborted (Ctrl-C); partial files are kept for the next run to resume. */
export class PullInterruptedError extends ModelsError {
  constructor(options?: { cause?: unknown }) {
    super('download interrupted; partial files were kept, run the same command again to resume', 1, options);
  }
}

/** Another process holds the model's lock for longer than we are willing to wait, or took it from us. */
export class ModelLockError extends ModelsError {}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}
