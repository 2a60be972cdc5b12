/**
 * Progress of a pull, as events a CLI can render (one combined cli-progress bar: value doneBytes,
 * total totalBytes, payload bytesPerSecond). This module knows nothing about terminals.
 */
export type PullEvent =
  | { type: 'listing'; repo: string; revision: string }
  | { type: 'waiting'; pid?: number; host?: string }
  | { type: 'plan'; files: number; totalBytes: number; cachedFiles: number; resumeBytes: number }
  | { type: 'progress'; doneBytes: number; totalBytes: number; bytesPerSecond: number; activeFiles: string[] }
  | { type: 'file'; path: string; size: number }
  | { type: 'done'; dir: string; downloadedBytes: number };

/** Hashing progress of `models verify`. */
export interface VerifyProgress {
  doneBytes: number;
  totalBytes: number;
  path: string;
}

export type ProgressListener = (event: PullEvent) => void;

const WINDOW_MS = 5000;
const MIN_INTERVAL_MS = 100;

/**
 * Sums the bytes of all files into one figure, with a rate over the last few seconds, and
 * emits at most every 100 ms (plus once at the end) so a fast link does not flood the listener.
 */
export class TransferMeter {
  private readonly perFile = new Map<string, number>();
  private readonly active = new Set<string>();
  private samples: { t: number; bytes: number }[] = [];
  private transferred = 0;
  private lastEmit = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly totalBytes: number,
    private readonly listener: ProgressListener | undefined,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Bytes already on disk for `path` (a resumed .part), or 0 when it starts over. */
  setFileBytes(path: string, bytes: number): void {
    this.perFile.set(path, bytes);
    this.emit(false);
  }

  start(path: string): void {
    this.active.add(path);
  }

  finish(path: string): void {
    this.active.delete(path);
  }

  /** New bytes arrived over the network for `path`. */
  add(path: string, bytes: number): void {
    this.perFile.set(path, (this.perFile.get(path) ?? 0) + bytes);
    this.transferred += bytes;
    const t = this.now();
    this.samples.push({ t, bytes: this.transferred });
    while (this.samples.length > 2 && this.samples[0]!.t < t - WINDOW_MS) this.samples.shift();
    this.emit(false);
  }

  get downloadedBytes(): number {
    return this.transferred;
  }

  bytesPerSecond(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = (last.t - first.t) / 1000;
    return dt > 0 ? (last.bytes - first.bytes) / dt : 0;
  }

  emit(force: boolean): void {
    if (!this.listener) return;
    const t = this.now();
    if (!force && t - this.lastEmit < MIN_INTERVAL_MS) return;
    this.lastEmit = t;
    let done = 0;
    for (const bytes of this.perFile.values()) done += bytes;
    this.listener({
      type: 'progress',
      doneBytes: done,
      totalBytes: this.totalBytes,
      bytesPerSecond: this.bytesPerSecond(),
      activeFiles: [...this.active],
    });
  }
}
