import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GENERATION_OPTIONS, flagName, type OptionSpec } from '../src/settings/options.js';
import { TRAIN_OPTIONS } from '../src/commands/embed-train-options.js';
import { loadRegistry } from '../src/models/index.js';
import { SCHEDULES, SAMPLERS } from '../src/schedulers/index.js';
import { ROOT, diffuse } from './helpers/cli.js';

/** The README documents what the code has: every flag, command, schedule, sampler and registry id. */
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

test('every generation option of the options table is in the README', () => {
  for (const o of GENERATION_OPTIONS as readonly OptionSpec[]) assert.ok(readme.includes(`\`${flagName(o)}`) || readme.includes(` ${flagName(o)}`), `${flagName(o)} is documented`);
});

test("every embed-train option is in the README's table", () => {
  for (const o of TRAIN_OPTIONS) assert.ok(readme.includes(`| \`${o.flags}\` |`), `${o.flags} is documented`);
});

test('every subcommand is in the README', () => {
  const help = diffuse(['--help']).stdout;
  const commands = [...help.matchAll(/^\s{2}(\w[\w-]*) /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  assert.ok(commands.length >= 8, `found ${commands.join(', ')}`);
  for (const c of commands) assert.ok(readme.includes(`diffuse ${c}`), `diffuse ${c} is documented`);
});

test('every sampler, schedule and registry id is in the README', () => {
  for (const id of Object.keys(SAMPLERS)) assert.ok(readme.includes(`\`${id}\``), `sampler ${id}`);
  for (const id of Object.keys(SCHEDULES)) assert.ok(readme.includes(`\`${id}\``), `schedule ${id}`);
  for (const m of loadRegistry().models) assert.ok(readme.includes(`\`${m.id}\``), `model ${m.id}`);
});

test.run();
