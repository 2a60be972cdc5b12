import { cosmiconfig } from 'cosmiconfig';
import { UsageError } from '../errors.js';
import { GENERATION_OPTIONS, defaultFor, flagName, type GeneratingCommand, type OptionSpec, type SettingKey, type Settings } from './options.js';

export type SettingSource = 'default' | 'config' | 'flag';

export interface ResolvedSettings {
  settings: Settings;
  sources: Record<SettingKey, SettingSource>;
  /** The config file that was found, if any. */
  configPath: string | undefined;
}

export interface LoadedConfig {
  values: Record<string, unknown>;
  path: string | undefined;
}

/**
 * The `diffuse` key in package.json, .diffuserc(.json|.yaml|.yml|.js), diffuse.config.js, ...
 * searched from the working directory up, as cosmiconfig does for every tool that uses it.
 */
export async function loadConfig(cwd = process.cwd(), explicitPath?: string): Promise<LoadedConfig> {
  const explorer = cosmiconfig('diffuse');
  try {
    const found = explicitPath ? await explorer.load(explicitPath) : await explorer.search(cwd);
    if (!found || found.isEmpty) return { values: {}, path: found?.filepath };
    if (typeof found.config !== 'object' || found.config === null || Array.isArray(found.config)) {
      throw new UsageError(`${found.filepath}: the config must be an object of settings`);
    }
    return { values: found.config as Record<string, unknown>, path: found.filepath };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot read the config file: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

/**
 * defaults (the subcommand's, when one is given) < config file < flags; every value goes through
 * its option's parser.
 */
export function resolveSettings(config: LoadedConfig, flags: Record<string, unknown>, command?: GeneratingCommand): ResolvedSettings {
  const known = new Map((GENERATION_OPTIONS as readonly OptionSpec[]).map((o) => [o.key as string, o]));
  for (const key of Object.keys(config.values)) {
    const o = known.get(key);
    if (!o) throw new UsageError(`${config.path}: unknown setting '${key}' (known: ${[...known.keys()].filter((k) => known.get(k)!.configurable).join(', ')})`);
    if (!o.configurable) throw new UsageError(`${config.path}: '${key}' cannot be set in a config file; pass ${flagName(o)}`);
  }
  const settings: Record<string, unknown> = {};
  const sources = {} as Record<SettingKey, SettingSource>;
  for (const o of GENERATION_OPTIONS as readonly OptionSpec[]) {
    if (flags[o.key] !== undefined) {
      settings[o.key] = o.parse(flags[o.key], flagName(o));
      sources[o.key] = 'flag';
    } else if (config.values[o.key] !== undefined) {
      settings[o.key] = o.parse(config.values[o.key], `${o.key} in ${config.path}`);
      sources[o.key] = 'config';
    } else {
      settings[o.key] = command ? defaultFor(o, command) : o.default;
      sources[o.key] = 'default';
    }
  }
  return { settings: settings as unknown as Settings, sources, configPath: config.path };
}
