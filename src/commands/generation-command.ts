import type { Command } from 'commander';
import { GENERATION_OPTIONS, type OptionSpec } from '../settings/options.js';

/** Flags shared by every generating subcommand, from the one options table. */
export function addGenerationOptions(cmd: Command): Command {
  for (const o of GENERATION_OPTIONS as readonly OptionSpec[]) {
    cmd.option(o.flags, `${o.description}${defaultText(o)}`);
  }
  return cmd
    .option('--json', 'print one JSON record per image on stdout (path, seed, parameters, timings)')
    .option('-q, --quiet', 'no progress output')
    .option('--config <path>', 'read settings from this config file instead of searching for one');
}

function defaultText(o: OptionSpec): string {
  if (o.default === undefined || o.default === '' || o.default === false) return '';
  return ` (default: ${String(o.default)})`;
}
