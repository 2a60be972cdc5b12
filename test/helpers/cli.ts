import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The CLI's caches (optimised graphs, edited graphs, models) go to a scratch home, never the user's. */
const HOME = mkdtempSync(join(tmpdir(), 'diffuse-home-'));
// Removed when the test process ends: each holds up to ~0.5 GB of optimised graphs, and left behind they filled /tmp.
process.on('exit', () => rmSync(HOME, { recursive: true, force: true }));
export const TINY_SD = join(ROOT, 'test/fixtures/tiny-sd');
const BIN = join(ROOT, 'bin/diffuse.js');

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the real binary, as a user's shell would, with no TTY. */
export function diffuse(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    ...(options.input !== undefined ? { input: options.input } : {}),
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', DIFFUSE_HOME: HOME, ...options.env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking this process: for tests that serve something the CLI calls. */
export function diffuseAsync(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', DIFFUSE_HOME: HOME, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

export function tempDir(prefix = 'diffuse-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Every file below dir, relative, sorted: to assert nothing was left behind. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}
