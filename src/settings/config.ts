import { cosmiconfig } from 'cosmiconfig';
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { GENERATION_OPTIONS, defaultFor, flagName, type GeneratingCommand, type OptionSpec, type SettingKey, type Settings } from './options.js';

export type SettingSource = 'default' | 'config' | 'image' | 'flag';

export interface ResolvedSettings {
  settings: Settings;
  sources: Record<SettingKey, SettingSource>;
  /** The config file that was found, if any. */
  configPath: string | undefined;
}

export interface LoadedConfig {
  values: Record<string, unknown>;
  path: string | undefined;
  /** Config files that are code, found by the search and not run (only --config runs code). */
  notRun: string[];
}

/** Config files that are data, in cosmiconfig's order of precedence within one folder. */
const DATA_FILES = ['package.json', '.diffuserc', '.diffuserc.json', '.diffuserc.yaml', '.diffuserc.yml', '.config/diffuserc', '.config/diffuserc.json', '.config/diffuserc.yaml', '.config/diffuserc.yml'];
/** Config files that are programs: run only when named with --config. */
const CODE_FILES = [
  ...['js', 'ts', 'cjs', 'mjs'].flatMap((ext) => [`.diffuserc.${ext}`, `.config/diffuserc.${ext}`]),
  ...['js', 'ts', 'cjs', 'mjs'].map((ext) => `diffuse.config.${ext}`),
];
/** A settings file is a few hundred bytes; this is far above any real one. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * The settings file: `--config <path>` (any format cosmiconfig reads, JavaScript included: naming
 * it is consent to run it), or else the first data file (package.json's `diffuse` key, .diffuserc,
 * .diffuserc.json/.yaml/.yml, also under .config/) from the working directory up to the project's
 * root (the first folder with a package.json), the home folder or /. A JavaScript or TypeScript
 * config found by that search is never run: a CLI run in CI or in a downloaded folder must not
 * execute code that happens to sit in a parent folder. It is reported in `notRun` instead.
 */
export async function loadConfig(cwd = process.cwd(), explicitPath?: string): Promise<LoadedConfig> {
  if (explicitPath !== undefined) {
    if (explicitPath.trim() === '') throw new UsageError('--config is empty; give a config file or leave the option out');
    await readInputFile(explicitPath, { label: '--config', maxBytes: MAX_CONFIG_BYTES });
    return { ...(await loadFile(resolve(cwd, explicitPath))), notRun: [] };
  }
  const notRun: string[] = [];
  for (const dir of searchedFolders(cwd)) {
    notRun.push(...CODE_FILES.map((f) => join(dir, f)).filter(isFile));
    for (const place of DATA_FILES) {
      const path = join(dir, place);
      if (!isFile(path)) continue;
      await readInputFile(path, { label: 'config file', maxBytes: MAX_CONFIG_BYTES });
      const loaded = await loadFile(path);
      if (loaded.path !== undefined) return { ...loaded, notRun };
    }
    if (existsSync(join(dir, 'package.json'))) break;
  }
  return { values: {}, path: undefined, notRun };
}

function* searchedFolders(cwd: string): Generator<string> {
  const home = homedir();
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    yield dir;
    if (dir === home || dirname(dir) === dir) return;
  }
}

const isFile = (path: string): boolean => statSync(path, { throwIfNoEntry: false })?.isFile() === true;

/** One file through cosmiconfig's loaders; a package.json without a `diffuse` key is no config. */
async function loadFile(path: string): Promise<Omit<LoadedConfig, 'notRun'>> {
  let found;
  try {
    found = await cosmiconfig('diffuse').load(path);
  } catch (err) {
    // cosmiconfig puts the reason on the lines after "JSON Error in <file>:".
    const reason = (err as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
    throw new UsageError(`cannot read the config file: ${reason}`, { cause: err });
  }
  if (!found || found.config === undefined) return { values: {}, path: basename(path) === 'package.json' ? undefined : path };
  if (found.isEmpty) return { values: {}, path: found.filepath };
  if (typeof found.config !== 'object' || found.config === null || Array.isArray(found.config)) {
    throw new UsageError(`${found.filepath}: the config must be an object of settings`);
  }
  return { values: found.config as Record<string, unknown>, path: found.filepath };
}

/**
 * defaults (the subcommand's, when one is given) < config file < what an image records (--from:
 * `recorded`, where a key given as undefined is a default the image's writer leaves out) < flags;
 * every value goes through its option's parser.
 */
export function resolveSettings(config: LoadedConfig, flags: Record<string, unknown>, command?: GeneratingCommand, recorded?: Readonly<Record<string, unknown>>): ResolvedSettings {
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
    } else if (recorded && o.key in recorded) {
      // What the image records, or (undefined) the default its writer left out: not the config's.
      settings[o.key] = recorded[o.key] !== undefined ? o.parse(recorded[o.key], `the image's ${flagName(o)}`) : command ? defaultFor(o, command) : o.default;
      sources[o.key] = 'image';
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
