import { CheckpointError } from './errors.js';
import type { TensorStore } from './weights.js';

/**
 * Refuses, in one line, a weight file that is not exactly a fixed-architecture network's state dict
 * (a tensor missing, extra or of another shape): `network` names what was expected, `file` the file to pass as `field`=.
 */
export function checkStateDict(store: TensorStore, expected: ReadonlyMap<string, readonly number[]>, network: string, file: string, field = 'detector'): void {
  const refuse = (why: string): never => {
    throw new CheckpointError(`${store.label} is not ${network} (${why}); pass ${file} as ${field}=`);
  };
  for (const [key, shape] of expected) {
    const found = store.describe(key);
    if (!found) refuse(`no tensor ${key}`);
    else if (found.shape.join() !== shape.join()) refuse(`${key} has shape [${found.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  const extra = [...store.keys()].find((k) => !expected.has(k));
  if (extra !== undefined) refuse(`it also holds ${extra}`);
}

/**
 * The key prefix a state dict was saved with (`module.` from DataParallel, or none): the first of `prefixes` under which
 * `probe` is there, else the first of them, so that a refusal names the key as the usual file has it.
 */
export function storedPrefix(store: TensorStore, probe: string, prefixes: readonly [string, string]): string {
  return prefixes.find((p) => store.describe(`${p}${probe}`)) ?? prefixes[0];
}
