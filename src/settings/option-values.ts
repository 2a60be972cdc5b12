import { UsageError } from '../errors.js';
import { GENERATION_OPTIONS, type GeneratingCommand, type OptionSpec } from './options.js';

const OPTIONS = GENERATION_OPTIONS as readonly OptionSpec[];

/**
 * Option values written outside the command line (a JSONL prompts line, a build manifest entry):
 * each key must be an option of the table, spelled as in config files, and each value must pass that
 * option's own parser. `where` starts every message ("prompts.jsonl line 3").
 */
export function checkOptionValues(values: Record<string, unknown>, where: string, command: GeneratingCommand): void {
  for (const [key, raw] of Object.entries(values)) {
    const o = OPTIONS.find((s) => s.key === key);
    if (!o) throw new UsageError(`${where}: unknown option '${key}'${suggestion(key)}`);
    if (o.commands && !o.commands.includes(command)) throw new UsageError(`${where}: '${key}' is not an option of ${command} (it belongs to ${o.commands.join(', ')})`);
    o.parse(raw, `${where}: ${key}`);
  }
}

/** The option a misspelt key most likely meant: its flag spelling, or another case. */
function suggestion(key: string): string {
  const bare = key.replace(/^-+/, '').replace(/[-_](\w)/g, (_, c: string) => c.toUpperCase()).toLowerCase();
  const near = OPTIONS.find((o) => o.key.toLowerCase() === bare || o.flags.split(/[ ,]+/).some((f) => f.replace(/^-+/, '').toLowerCase() === key.toLowerCase()));
  return near ? ` (did you mean '${near.key}'?)` : ' (keys are the options of config files: model, steps, cfgScale, sampler, ...; see diffuse config)';
}
