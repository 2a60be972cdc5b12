import type { Command } from 'commander';
import { defaultFor, optionsFor, type GeneratingCommand, type OptionSpec } from '../settings/options.js';
import { XYZ_COMMANDS } from '../settings/xyz.js';
import { XYZ_OPTIONS } from './xyz-options.js';

/** A generating subcommand's flags, from the one options table. */
export function addGenerationOptions(cmd: Command, command: GeneratingCommand): Command {
  for (const o of optionsFor(command)) {
    const description = `${o.description}${defaultText(o, command)}`;
    if (o.repeatable) cmd.option(o.flags, description, (value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    else cmd.option(o.flags, description);
  }
  if (XYZ_COMMANDS.includes(command)) for (const o of XYZ_OPTIONS) cmd.option(o.flags, o.description);
  return cmd
    .option('--json', 'print one JSON record per image on stdout (path, seed, parameters, timings)')
    .option('-q, --quiet', 'no progress output')
    .option('--config <path>', 'read settings from this config file instead of searching for one');
}

function defaultText(o: OptionSpec, command: GeneratingCommand): string {
  const value = defaultFor(o, command);
  if (value === undefined || value === '' || value === false || (Array.isArray(value) && value.length === 0)) return '';
  return ` (default: ${String(value)})`;
}
