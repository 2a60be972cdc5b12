import { rmSync } from 'node:fs';
import type { suite } from 'uvu';
import { tempDir } from './cli.js';

/** Temporary folders a suite makes (converted models are tens of megabytes each), removed after it. */
export function scratch(s: ReturnType<typeof suite>): (prefix?: string) => string {
  const made: string[] = [];
  s.after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  return (prefix) => {
    const dir = tempDir(prefix);
    made.push(dir);
    return dir;
  };
}
