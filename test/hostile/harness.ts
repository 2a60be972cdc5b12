import chalk from 'chalk';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli.js';
import { diffuse } from '../helpers/cli.js';

/** One hostile input and what diffuse must answer: the exit code and the one line it prints. */
export interface HostileCase {
  /** Which entry point it tries (flags, config, images, models, ...), for the tally. */
  group: string;
  name: string;
  argv: string[];
  status: 0 | 1 | 2;
  /** The error (or warning) line; required when status is not 0. */
  stderr?: RegExp;
  /** How many lines stderr has when not 1 (a warning before the error; 'any': the help); `stderr` is then matched against all of it. */
  lines?: number | 'any';
  stdout?: RegExp;
  cwd?: string;
  env?: Record<string, string>;
  /** Folders that must hold no new file (besides `keep`) when the case is done. */
  watch?: string[];
  /** Files expected in the watched folders after the run (relative names). */
  keep?: string[];
  /** Runs in a child process: the point is a crash or a signal, which in-process cannot show. */
  spawn?: boolean;
  /** Made just before the case runs. */
  setup?: () => void | Promise<void>;
}

export interface Outcome {
  status: number;
  stdout: string;
  stderr: string;
  /** The child died of a signal (spawned cases). */
  signal?: string;
  hung: boolean;
}

export const CASE_TIMEOUT_MS = 60_000;

/**
 * `main(argv)` of src/cli.ts in this process, as bin/diffuse.js calls it, with stdout and stderr
 * captured and process.exitCode, the working directory and the environment restored afterwards.
 */
export async function runInProcess(argv: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<Outcome> {
  const out: string[] = [];
  const err: string[] = [];
  const writes = { out: process.stdout.write, err: process.stderr.write };
  const capture = (into: string[]) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      into.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof process.stdout.write;
  const cwd = process.cwd();
  const env = { ...process.env };
  const exitCode = process.exitCode;
  const colour = chalk.level;
  process.exitCode = undefined;
  // As a terminal without colour shows it (chalk chose its level when it was loaded).
  chalk.level = 0;
  Object.assign(process.env, { NO_COLOR: '1', ...options.env });
  if (options.cwd) process.chdir(options.cwd);
  process.stdout.write = capture(out);
  process.stderr.write = capture(err);
  let timer: NodeJS.Timeout | undefined;
  try {
    const hang = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), CASE_TIMEOUT_MS)));
    const status = await Promise.race([main(argv), hang]);
    return { status: status === 'hang' ? -1 : status, stdout: out.join(''), stderr: err.join(''), hung: status === 'hang' };
  } finally {
    clearTimeout(timer);
    process.stdout.write = writes.out;
    process.stderr.write = writes.err;
    process.chdir(cwd);
    for (const key of Object.keys(process.env)) if (!(key in env)) delete process.env[key];
    Object.assign(process.env, env);
    process.exitCode = exitCode;
    chalk.level = colour;
  }
}

export function runSpawned(argv: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Outcome {
  const r = diffuse(argv, options);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, hung: r.status === -1, ...(r.status === -1 ? { signal: 'SIGSEGV or timeout' } : {}) };
}

/** Every file below `dir` (relative), or [] when it does not exist. */
export function filesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

/** What the suite counts; the README quotes the line `tally` prints. */
export interface Tally {
  cases: number;
  crashes: number;
  hangs: number;
  stackTraces: number;
  partialFiles: number;
  wrongExitCodes: number;
  /** Cases whose message did not match (reported with the rest). */
  wrongMessages: number;
}

export const emptyTally = (): Tally => ({ cases: 0, crashes: 0, hangs: 0, stackTraces: 0, partialFiles: 0, wrongExitCodes: 0, wrongMessages: 0 });

/** The problems one outcome shows, each counted in the tally; [] when the case passed. */
export function judge(c: HostileCase, o: Outcome, before: Map<string, string[]>, tally: Tally): string[] {
  const problems: string[] = [];
  tally.cases++;
  if (o.hung) {
    tally.hangs++;
    problems.push('hang');
  }
  // A native crash shows as a signal or 128+n; a JS crash as an error that is not ours.
  if (o.status > 2 || o.signal || /Maximum call stack|FATAL ERROR|Segmentation|core dumped|run with --verbose for details/.test(o.stderr)) {
    tally.crashes++;
    problems.push(`crash (status ${o.status}${o.signal ? `, ${o.signal}` : ''})`);
  }
  if (/\n\s+at .+:\d+/.test(o.stderr)) {
    tally.stackTraces++;
    problems.push('stack trace');
  }
  if (o.status !== c.status) {
    tally.wrongExitCodes++;
    problems.push(`exit ${o.status}, expected ${c.status}`);
  }
  const lines = o.stderr.split('\n').filter((l) => l !== '');
  const expected = c.lines ?? 1;
  const stderrOk =
    c.status === 0 && c.stderr === undefined
      ? lines.length === 0
      : (expected === 'any' || lines.length === expected) && (c.stderr ?? /./).test(expected === 1 ? (lines[0] ?? '') : o.stderr);
  const messageOk = stderrOk && (c.stdout === undefined || c.stdout.test(o.stdout));
  if (!messageOk) {
    tally.wrongMessages++;
    problems.push(`message: ${JSON.stringify(o.stderr.slice(0, 400))} stdout ${JSON.stringify(o.stdout.slice(0, 200))}`);
  }
  for (const dir of c.watch ?? []) {
    const now = filesIn(dir);
    const was = new Set(before.get(dir) ?? []);
    const added = now.filter((f) => !was.has(f) && !(c.keep ?? []).includes(f));
    const temp = now.filter((f) => /\.diffuse-.*\.tmp$|\.tmp$/.test(f));
    if (added.length > 0 || temp.length > 0) {
      tally.partialFiles++;
      problems.push(`files left in ${dir}: ${[...new Set([...added, ...temp])].join(', ')}`);
    }
  }
  return problems;
}

export function formatTally(t: Tally): string {
  return `hostile corpus: ${t.cases} cases tried, ${t.crashes} crashes (native or JS), ${t.hangs} hangs, ${t.stackTraces} stack traces, ${t.partialFiles} partial files, ${t.wrongExitCodes} wrong exit codes, ${t.wrongMessages} wrong messages`;
}
