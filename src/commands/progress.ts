import cliProgress from 'cli-progress';
import type { PipelineEvent, PipelineListener } from '../pipeline/types.js';

export interface ProgressView {
  listener(label: string): PipelineListener;
  stop(): void;
}

/**
 * A bar per batch on a terminal (step, it/s, ETA); one plain line per batch when stderr is not a
 * terminal (logs, CI); nothing with --quiet or --json's machine output. Always on stderr, so
 * stdout carries only results.
 */
export function progressView(options: { quiet: boolean; stream?: NodeJS.WriteStream }): ProgressView {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { listener: () => () => {}, stop: () => {} };
  if (!stream.isTTY) {
    return {
      listener: (label) => {
        let current = label;
        return (event) => {
          if (event.kind === 'pass') current = passLabel(label, event);
          if (event.kind === 'step' && event.step === event.total) stream.write(`${current}: ${event.total} steps done\n`);
        };
      },
      stop: () => {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  let started = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    listener: (label) => {
      let current = label;
      return (event) => {
        if (event.kind === 'pass') current = passLabel(label, event);
        if (event.kind !== 'step') return;
        if (!bar) {
          bar = new cliProgress.SingleBar(
            { stream, format: `${current} [{bar}] {value}/{total} steps | {rate} it/s | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: false },
            cliProgress.Presets.shades_classic,
          );
          started = performance.now();
          bar.start(event.total, 0, { rate: '-' });
        }
        const rate = (event.step / ((performance.now() - started) / 1000)).toFixed(2);
        bar.update(event.step, { rate });
        if (event.step === event.total) stop();
      };
    },
    stop,
  };
}

/** Outpainting's passes: which image and which pass the bar counts. */
function passLabel(label: string, e: Extract<PipelineEvent, { kind: 'pass' }>): string {
  return `${label}${e.images > 1 ? `, image ${e.image}/${e.images}` : ''}, pass ${e.pass}/${e.passes}`;
}
