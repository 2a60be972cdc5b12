import { readFileSync } from 'node:fs';

/** A process's peak resident set (VmHWM) in MB, or NaN once it is gone or on a system without /proc. */
export function readPeakRssMb(pid: number): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
