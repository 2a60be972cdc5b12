import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../image/write.js';
import type { AdamWState } from './adamw.js';
import type { DrawsState } from './draws.js';
import { TrainInputError } from './errors.js';

/**
 * What --resume needs to continue a run exactly where it stopped: the learned vectors, AdamW's
 * moments and step, the generator's state and the epoch's order, the losses so far, and the
 * settings that must not change between the two runs (anything but --steps and how often to
 * save or preview). Written atomically after each save and on Ctrl-C: a crash mid-write leaves
 * the previous state whole.
 */

export const STATE_VERSION = 1;

export interface TrainState {
  version: number;
  /** Updates done. */
  step: number;
  vectors: Float32Array;
  adam: AdamWState;
  draws: DrawsState;
  losses: number[];
  /** The settings the run was started with (JSON-able). */
  settings: Record<string, unknown>;
}

const b64 = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function floats(text: unknown): Float32Array {
  if (typeof text !== 'string') throw new Error('expected base64 floats');
  const bytes = Buffer.from(text, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export async function writeState(path: string, state: TrainState): Promise<void> {
  const json = JSON.stringify({
    ...state,
    vectors: b64(state.vectors),
    adam: { step: state.adam.step, expAvg: b64(state.adam.expAvg), expAvgSq: b64(state.adam.expAvgSq) },
  });
  await writeFileAtomic(path, new TextEncoder().encode(json), { ifExists: 'overwrite' });
}

export function readState(path: string): TrainState {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new TrainInputError(missing ? `--resume: no training state at ${path} (a run saves it there at --save-every steps and on Ctrl-C)` : `--resume: ${path} is not a training state: ${(err as Error).message}`, { cause: err });
  }
  try {
    if (raw.version !== STATE_VERSION) throw new Error(`version ${String(raw.version)}, expected ${STATE_VERSION}`);
    const adam = raw.adam as Record<string, unknown>;
    return {
      version: STATE_VERSION,
      step: Number(raw.step),
      vectors: floats(raw.vectors),
      adam: { step: Number(adam.step), expAvg: floats(adam.expAvg), expAvgSq: floats(adam.expAvgSq) },
      draws: raw.draws as DrawsState,
      losses: raw.losses as number[],
      settings: raw.settings as Record<string, unknown>,
    };
  } catch (err) {
    throw new TrainInputError(`--resume: ${path} is damaged (${(err as Error).message}); start again without --resume`, { cause: err });
  }
}

/** The first setting that differs between the saved run and this one, or undefined. */
export function changedSetting(saved: Record<string, unknown>, now: Record<string, unknown>): string | undefined {
  for (const key of new Set([...Object.keys(saved), ...Object.keys(now)])) {
    if (JSON.stringify(saved[key]) !== JSON.stringify(now[key])) return key;
  }
  return undefined;
}
