import { mkdirSync, writeFileSync } from 'node:fs';
import { cpuTag, describeCpu } from './cpu.js';

/**
 * Writes bench/results/<prefix><date>-<cpu>.{json,md}: a results file is named by when it was measured and on
 * which CPU class (cpu.ts), so the files of one class sort together. The JSON gets the date first.
 */
export function writeResults(prefix: string, title: string, markdown: string, json: Record<string, unknown>): void {
  const date = `${new Date().toISOString().slice(0, 16).replace(/:/g, '')}-${cpuTag(describeCpu())}`;
  const dir = new URL('../../bench/results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL(`${prefix}${date}.json`, dir), `${JSON.stringify({ date, ...json }, null, 2)}\n`);
  writeFileSync(new URL(`${prefix}${date}.md`, dir), `# ${title} ${date}\n\n${markdown}\n`);
  process.stderr.write(`bench: wrote bench/results/${prefix}${date}.{json,md}\n`);
}
