import { terminalText } from './terminal-text.js';

/** Code config files the search found and did not run (see loadConfig in src/settings/config.ts). */
export function warnNotRun(paths: readonly string[]): void {
  for (const path of paths) process.stderr.write(`warning: ${terminalText(path)} is not run: a config file that is code runs only when named with --config\n`);
}
