import cliProgress from 'cli-progress';
import type { PullEvent } from '../models/index.js';

const MB = 1024 * 1024;

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MB) return `${(bytes / 1024 / MB).toFixed(2)} GB`;
  if (bytes >= MB) return `${(bytes / MB).toFixed(1)} MB`;
  return `${Math.round(bytes / 1024)} kB`;
}

/**
 * One combined bar for all files of a pull on a terminal (bytes, rate, ETA); a line per finished
 * file otherwise; nothing with quiet. On stderr, so stdout stays for results.
 */
export function pullProgress(options: { quiet: boolean; stream?: NodeJS.WriteStream }): { listener: (e: PullEvent) => void; stop: () => void } {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { listener: () => {}, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  const listener = (e: PullEvent) => {
    switch (e.type) {
      case 'waiting':
        stream.write(`waiting for another diffuse process${e.pid ? ` (pid ${e.pid})` : ''} pulling the same model\n`);
        return;
      case 'plan':
        stream.write(`${e.files} files, ${formatBytes(e.totalBytes)}${e.cachedFiles ? ` (${e.cachedFiles} already here)` : ''}${e.resumeBytes ? `, resuming ${formatBytes(e.resumeBytes)}` : ''}\n`);
        if (stream.isTTY && e.totalBytes > 0) {
          bar = new cliProgress.SingleBar(
            { stream, format: 'download [{bar}] {percentage}% | {done}/{all} | {rate}/s | ETA {eta_formatted}', hideCursor: true },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.totalBytes, 0, { done: formatBytes(0), all: formatBytes(e.totalBytes), rate: '-' });
        }
        return;
      case 'progress':
        bar?.update(e.doneBytes, { done: formatBytes(e.doneBytes), all: formatBytes(e.totalBytes), rate: formatBytes(e.bytesPerSecond) });
        return;
      case 'file':
        if (!bar) stream.write(`  ${e.path} (${formatBytes(e.size)})\n`);
        return;
      case 'done':
        stop();
        return;
      default:
        return;
    }
  };
  return { listener, stop };
}
