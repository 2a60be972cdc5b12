import { TrainInputError } from './errors.js';

/**
 * Learning rate per optimizer step (0-based: the rate the k-th update uses).
 * - diffusers' get_scheduler schedules (diffusers/optimization.py) over LambdaLR: constant,
 *   constant_with_warmup, linear, cosine (half a cycle), cosine_with_restarts, each a factor of
 *   the base rate; with warmup the factor rises as k / warmup first.
 * - A1111's rate string "0.005:100, 1e-3:1000, 1e-5": each rate until its step, the last one
 *   without a step to the end. A string whose last rate ends before --steps ends training there,
 *   as A1111's LearnRateScheduler does (`finished`).
 */

export const LR_SCHEDULES = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts'] as const;
export type LrScheduleName = (typeof LR_SCHEDULES)[number];

export interface LrSchedule {
  /** The rate of update k (0-based). */
  rate(k: number): number;
  /** Steps the schedule allows (A1111's strings can end early); at most the steps asked for. */
  steps: number;
  /** How it was written, for the file's metadata and messages. */
  describe: string;
}

export interface LrOptions {
  lr: string;
  schedule: LrScheduleName;
  warmup: number;
  steps: number;
  /** cosine_with_restarts' hard restarts (diffusers' lr_num_cycles). */
  cycles?: number;
}

export function lrSchedule(options: LrOptions): LrSchedule {
  const text = options.lr.trim();
  if (/[:,]/.test(text)) {
    if (options.schedule !== 'constant' || options.warmup !== 0) {
      throw new TrainInputError(`--lr '${text}' is an A1111 rate schedule: it cannot be combined with --lr-schedule ${options.schedule} or --lr-warmup`);
    }
    return a1111Schedule(text, options.steps);
  }
  // diffusers' "constant" ignores its warmup steps; a warmup asked for would silently do nothing.
  if (options.schedule === 'constant' && options.warmup > 0) throw new TrainInputError('--lr-warmup needs a schedule that warms up: --lr-schedule constant_with_warmup, linear, cosine or cosine_with_restarts');
  const base = rateValue(text);
  const factor = lambdaFor(options);
  return { rate: (k) => base * factor(k), steps: options.steps, describe: `${base} ${options.schedule}${options.warmup ? `, warmup ${options.warmup}` : ''}` };
}

function rateValue(text: string): number {
  const v = Number(text);
  if (text === '' || !Number.isFinite(v) || v <= 0) throw new TrainInputError(`--lr: '${text}' is not a positive learning rate (e.g. 0.005, or A1111's '0.005:100, 1e-3:1000, 1e-5')`);
  return v;
}

function lambdaFor({ schedule, warmup, steps, cycles = 1 }: LrOptions): (k: number) => number {
  const warm = (k: number): number | undefined => (k < warmup ? k / Math.max(1, warmup) : undefined);
  const progress = (k: number): number => (k - warmup) / Math.max(1, steps - warmup);
  switch (schedule) {
    case 'constant':
      return () => 1;
    case 'constant_with_warmup':
      return (k) => warm(k) ?? 1;
    case 'linear':
      return (k) => warm(k) ?? Math.max(0, (steps - k) / Math.max(1, steps - warmup));
    case 'cosine':
      return (k) => warm(k) ?? Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress(k))));
    case 'cosine_with_restarts':
      return (k) => {
        const w = warm(k);
        if (w !== undefined) return w;
        const p = progress(k);
        return p >= 1 ? 0 : Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * p) % 1))));
      };
  }
}

function a1111Schedule(text: string, maxSteps: number): LrSchedule {
  const pieces: { rate: number; end: number }[] = [];
  for (const pair of text.split(',')) {
    const parts = pair.split(':').map((p) => p.trim());
    if (parts.length > 2) throw new TrainInputError(`--lr: cannot read '${pair.trim()}' (write rate:step pairs, e.g. '0.005:100, 1e-3:1000, 1e-5')`);
    const rate = rateValue(parts[0]!);
    if (parts.length === 1 || parts[1] === '-1') {
      pieces.push({ rate, end: maxSteps });
      break;
    }
    const end = Number(parts[1]);
    if (!Number.isInteger(end) || end < 1) throw new TrainInputError(`--lr: '${parts[1]}' in '${pair.trim()}' is not a step number`);
    if (pieces.length && end <= pieces.at(-1)!.end) continue;
    pieces.push({ rate, end: Math.min(end, maxSteps) });
    if (end >= maxSteps) break;
  }
  const steps = pieces.at(-1)!.end;
  return {
    rate: (k) => (pieces.find((p) => k < p.end) ?? pieces.at(-1)!).rate,
    steps,
    describe: text,
  };
}
