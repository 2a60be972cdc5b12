import cliProgress from 'cli-progress';
import type { EnsureProgress } from '../graphs/converted-cache.js';
import { formatBytes } from './pull-progress.js';

const STAGES: Readonly<Record<EnsureProgress['stage'], string>> = { hash: 'hashing', write: 'converting', probe: 'probing ε or v' };

/**
 * A bar per stage (hashing the file, writing the graphs' weights) on a terminal; a line when a
 * stage starts otherwise; nothing with quiet. On stderr, so stdout stays for the folder's path.
 */
export function convertProgress(options: { quiet: boolean; stream?: NodeJS.WriteStream }): { listener: (e: EnsureProgress) => void; stop: () => void } {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { listener: () => {}, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  let stage: EnsureProgress['stage'] | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  const listener = (e: EnsureProgress) => {
    if (e.stage !== stage) {
      stop();
      stage = e.stage;
      if (stream.isTTY && e.stage !== 'probe') {
        bar = new cliProgress.SingleBar({ stream, format: `${STAGES[e.stage].padEnd(10)} [{bar}] {percentage}% | {done}/{all} | ETA {eta_formatted}`, hideCursor: true }, cliProgress.Presets.shades_classic);
        bar.start(e.total, 0, { done: formatBytes(0), all: formatBytes(e.total) });
      } else {
        stream.write(`${STAGES[e.stage]}${e.stage === 'probe' ? '' : ` ${formatBytes(e.total)}`}\n`);
      }
    }
    bar?.update(e.done, { done: formatBytes(e.done), all: formatBytes(e.total) });
  };
  return { listener, stop };
}
