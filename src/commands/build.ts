import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { runBuild, type BuildEvent } from '../build/build.js';
import { parseShard } from '../build/shard.js';
import { DiffuseError, UsageError } from '../errors.js';
import { DEVICES } from '../onnx/session.js';
import { MODEL_TASK } from '../settings/generation-plan.js';
import { parseChoice, parseInteger } from '../settings/options.js';
import { BUILD_OPTIONS } from './build-options.js';
import { runJobs } from './build-jobs.js';
import { chooseModel } from './model-choice.js';
import { chooseVae } from './vae-choice.js';
import { terminalText } from './terminal-text.js';

const DEFAULT_MANIFESTS = ['assets.yaml', 'assets.yml', 'assets.json'];

interface BuildFlags {
  check?: boolean;
  force?: boolean;
  shard?: string;
  jobs?: string;
  lock?: string;
  json?: boolean;
  device?: string;
  threads?: string;
  offline?: boolean;
  yes?: boolean;
  quiet?: boolean;
}

/**
 * `diffuse build [manifest]`: the outputs a manifest lists, made or checked against the lock
 * (src/build/). Ctrl-C stops before the next file is written (exit 130); the files and the lock
 * written so far are whole, and the next run goes on from there.
 */
export function defineBuild(cmd: Command): Command {
  cmd.argument('[manifest]', `the manifest (YAML or JSON; default: ${DEFAULT_MANIFESTS.join(', ')} here)`);
  for (const o of BUILD_OPTIONS) cmd.option(o.flags, o.description);
  return cmd.action(async (manifestArg: string | undefined, flags: BuildFlags) => {
    const manifest = manifestArg ?? DEFAULT_MANIFESTS.find((m) => existsSync(m));
    if (!manifest) throw new UsageError(`no manifest: pass one (diffuse build assets.yaml) or create ${DEFAULT_MANIFESTS[0]} here`);
    if (flags.check && flags.force) throw new UsageError('--check builds nothing and --force builds everything: pass one');
    const quiet = Boolean(flags.quiet);
    const jobs = flags.jobs === undefined ? 1 : parseInteger(1, 64)(flags.jobs, '--jobs');
    if (jobs > 1) {
      if (flags.check) throw new UsageError('--check builds nothing: leave --jobs out');
      if (flags.shard !== undefined) throw new UsageError('--jobs splits the manifest into shards itself: leave --shard out (or run one shard per CI job)');
      const passOn = [...(flags.force ? ['--force'] : []), ...(flags.device !== undefined ? ['--device', flags.device] : []), ...(flags.offline ? ['--offline'] : []), ...(flags.yes ? ['--yes'] : [])];
      const lock = flags.lock ?? join(dirname(manifest), 'assets.lock.json');
      const threads = flags.threads !== undefined ? parseInteger(1, 1024)(flags.threads, '--threads') : undefined;
      const result = await runJobs({ manifest, lock, jobs, passOn, threads, onEvent: (e) => report(e, { json: Boolean(flags.json), quiet, check: false }) });
      if (result.interrupted) {
        process.stderr.write('interrupted: what was made is locked; run the build again to go on\n');
        process.exitCode = 130;
      }
      return;
    }
    const controller = new AbortController();
    const onSignal = () => {
      if (controller.signal.aborted) process.exit(130);
      controller.abort();
      if (!flags.json) process.stderr.write('\nstopping before the next file is written (Ctrl-C again quits at once)\n');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const result = await runBuild(
        {
          manifest,
          ...(flags.lock !== undefined ? { lock: flags.lock } : {}),
          check: Boolean(flags.check),
          force: Boolean(flags.force),
          ...(flags.shard !== undefined ? { shard: parseShard(flags.shard, '--shard') } : {}),
          device: flags.device === undefined ? 'cpu' : parseChoice(DEVICES)(flags.device, '--device'),
          ...(flags.threads !== undefined ? { threads: parseInteger(1, 1024)(flags.threads, '--threads') } : {}),
          offline: Boolean(flags.offline),
        },
        {
          chooseModel: (ref, command, offline) => chooseModel({ model: ref, offline, yes: Boolean(flags.yes) }, MODEL_TASK[command], quiet),
          chooseVae: (ref, scalingFactor, offline) => chooseVae(ref, { offline, yes: Boolean(flags.yes), quiet, scalingFactor }),
          onEvent: (e) => report(e, { json: Boolean(flags.json), quiet, check: Boolean(flags.check) }),
          signal: controller.signal,
        },
      );
      if (result.interrupted) {
        process.stderr.write(`interrupted: ${result.built.length} of ${result.stale.length} made and locked; run the build again to go on\n`);
        process.exitCode = 130;
      } else if (flags.check && result.stale.length) {
        throw new DiffuseError(`${result.stale.length} of ${result.assets} outputs are stale or missing; run diffuse build`);
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}

/**
 * --json: every event as a line on stdout. Otherwise what a script reads goes to stdout (--check's
 * stale outputs, a build's written files) and the rest to stderr.
 */
function report(e: BuildEvent, { json, quiet, check }: { json: boolean; quiet: boolean; check: boolean }): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(e)}\n`);
    return;
  }
  const say = (line: string) => quiet || process.stderr.write(`${terminalText(line)}\n`);
  switch (e.event) {
    case 'plan':
      say(`${e.assets} outputs${e.shard ? ` (shard ${e.shard})` : ''}: ${e.stale} to make, ${e.assets - e.stale} fresh`);
      break;
    case 'stale':
      if (check) process.stdout.write(`stale ${terminalText(e.path)}: ${e.reason}\n`);
      else say(`making ${e.path}: ${e.reason}`);
      break;
    case 'note':
      process.stderr.write(`note: ${terminalText(e.path)}: ${terminalText(e.message)}\n`);
      break;
    case 'load':
      say(`loading ${e.model} for ${e.assets} output${e.assets === 1 ? '' : 's'}`);
      break;
    case 'built':
      process.stdout.write(`${terminalText(e.path)}\n`);
      break;
    case 'done':
      say(`${e.built} made, ${e.fresh} fresh; ${e.lock}`);
      break;
  }
}
