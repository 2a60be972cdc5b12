import type { Command } from 'commander';
import chalk from 'chalk';
import { loadConfig, resolveSettings } from '../settings/config.js';
import { GENERATION_OPTIONS, flagName, type OptionSpec } from '../settings/options.js';
import { warnNotRun } from './config-warnings.js';

export function defineConfig(cmd: Command): Command {
  return cmd
    .option('--config <path>', 'read this config file instead of searching for one')
    .option('--json', 'print as JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      const config = await loadConfig(process.cwd(), opts.config);
      warnNotRun(config.notRun);
      const { settings, sources, configPath } = resolveSettings(config, {});
      const rows = (GENERATION_OPTIONS as readonly OptionSpec[])
        .filter((o) => o.configurable)
        .map((o) => ({
          key: o.key,
          flag: flagName(o),
          value: settings[o.key],
          source: sources[o.key],
          unset: o.unset ?? 'not set',
          // A default that differs per subcommand (img2img's strength 0.75, inpaint's 1).
          ...(sources[o.key] === 'default' && o.defaultFor ? { perCommand: { ...Object.fromEntries((o.commands ?? []).map((c) => [c, o.default])), ...o.defaultFor } } : {}),
        }));
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ configFile: configPath ?? null, settings: rows }, null, 2)}\n`);
        return;
      }
      process.stdout.write(`config file: ${configPath ?? 'none found (searched from the working directory up to the project root)'}\n`);
      const width = Math.max(...rows.map((r) => r.key.length));
      for (const r of rows) {
        const value = r.perCommand
          ? Object.entries(r.perCommand).map(([c, v]) => `${c} ${JSON.stringify(v)}`).join(', ')
          : r.value === undefined || r.value === '' ? chalk.dim(`(${r.unset})`) : JSON.stringify(r.value);
        const source = r.source === 'config' ? chalk.cyan('config') : chalk.dim(r.source);
        process.stdout.write(`${r.key.padEnd(width)}  ${value}  ${source}\n`);
      }
    });
}
