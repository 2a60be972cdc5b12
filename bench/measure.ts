import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import type { Peer, PeerResult } from './peers.js';
import { readPeakRssMb } from './proc.js';
import { benchCache, type WorkerArgs } from './settings.js';

/** One row of the benchmark: a tool at a size, measured or skipped with the reason. */
export interface Row {
  tool: string;
  width: number;
  height: number;
  result?: PeerResult;
  /** Peak RSS polled from /proc/<pid>/status while the tool ran (MB). */
  peakRssMb?: number;
  wallS?: number;
  /** 1-minute load average just before and just after the run (other jobs share the machine). */
  loadBefore: number;
  loadAfter?: number;
  skipped?: string;
  /** It started and did not finish (exit code, signal, timeout): unlike a missing model, worth trying again. */
  failed?: boolean;
  /** Which turn of --repeats this was (1-based). */
  run?: number;
}

const POLL_MS = 100;

/** Runs one tool in a child process, polling its VmHWM, within a time limit. */
export async function measure(peer: Peer, args: WorkerArgs, timeoutS: number): Promise<Row> {
  const base = { tool: peer.name, width: args.width, height: args.height, loadBefore: loadavg()[0]! };
  const reason = peer.unavailable();
  if (reason) return { ...base, skipped: reason };
  const { file, argv, env } = await peer.command(args);
  const started = performance.now();
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peak = Number.NaN;
  // VmHWM only grows, so the last reading before exit is the peak (to within one poll).
  const poll = setInterval(() => {
    const now = readPeakRssMb(child.pid!);
    if (!Number.isNaN(now)) peak = Number.isNaN(peak) ? now : Math.max(peak, now);
  }, POLL_MS);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutS * 1000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearInterval(poll);
  clearTimeout(timer);
  const wallS = (performance.now() - started) / 1000;
  const after = { loadAfter: loadavg()[0]!, wallS };
  // The whole output, for when a number looks wrong (stable-diffusion.cpp's warnings, Python tracebacks).
  const logs = join(benchCache(), 'logs');
  mkdirSync(logs, { recursive: true });
  writeFileSync(join(logs, `${peer.name.replace(/\W+/g, '_')}-${args.width}x${args.height}.log`), `${stdout}\n--- stderr ---\n${stderr}`);
  if (code !== 0) {
    const tail = (stderr || stdout).trim().split('\n').slice(-1)[0] ?? '';
    const rss = Number.isFinite(peak) ? `, peak RSS ${peak.toFixed(0)} MB` : '';
    return { ...base, ...after, failed: true, skipped: code === null ? killReason(signal, timedOut, timeoutS) + rss : `exit ${code}: ${tail.slice(0, 200)}` };
  }
  try {
    const result = peer.parse(stdout + stderr);
    const readings = [peak, result.peak_rss_mb ?? Number.NaN].filter(Number.isFinite);
    return { ...base, ...after, result, ...(readings.length ? { peakRssMb: Math.max(...readings) } : {}) };
  } catch (err) {
    return { ...base, ...after, skipped: `output not understood: ${(err as Error).message}` };
  }
}

/**
 * Why a child ended without an exit code: the bench's own --timeout, or a signal from elsewhere. A
 * SIGKILL the bench did not send is most often the kernel's out-of-memory killer (`dmesg` says).
 */
export function killReason(signal: NodeJS.Signals | null, timedOut: boolean, timeoutS: number): string {
  if (timedOut) return `stopped by the bench after ${timeoutS} s (--timeout)`;
  if (signal === 'SIGKILL') return 'killed by SIGKILL, not sent by the bench (out of memory? see dmesg)';
  return `killed by ${signal ?? 'an unknown signal'}`;
}
