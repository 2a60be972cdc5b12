import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { manifestAssets } from '../src/build/assets.js';
import { manifestOf } from '../src/build/manifest.js';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GENERATION_OPTIONS, flagName, type OptionSpec } from '../src/settings/options.js';
import { TRAIN_OPTIONS } from '../src/commands/embed-train-options.js';
import { BUILD_OPTIONS, LOCK_MERGE_OPTIONS } from '../src/commands/build-options.js';
import { XYZ_OPTIONS } from '../src/commands/xyz-options.js';
import { UPSCALE_OPTIONS } from '../src/commands/upscale-options.js';
import { IMG2TXT_OPTIONS } from '../src/commands/img2txt-options.js';
import jsYaml from 'js-yaml';
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

test("every --xyz option is in the README's table, and the plot's picture is there", () => {
  for (const o of XYZ_OPTIONS) assert.ok(readme.includes(`| \`${o.flags}\` |`), `${o.flags} is documented`);
  const picture = /!\[[^\]]*\]\((docs\/[\w.-]+\.png)\)/.exec(readme.slice(readme.indexOf('## X/Y/Z plots')));
  assert.ok(picture && existsSync(join(ROOT, picture[1]!)), 'the README shows a grid from docs/');
});

test("every upscale option is in the README's table", () => {
  for (const o of UPSCALE_OPTIONS) assert.ok(readme.includes(`| \`${o.flags}\` |`), `${o.flags} is documented`);
});

test("every img2txt option is in the README's table", () => {
  for (const o of IMG2TXT_OPTIONS) assert.ok(readme.includes(`| \`${o.flags}\` |`), `${o.flags} is documented`);
});

test("every build and lock merge option is in the README's table; its CI examples parse and use only those flags", () => {
  for (const o of [...BUILD_OPTIONS, ...LOCK_MERGE_OPTIONS]) assert.ok(readme.includes(`| \`${o.flags}\` |`), `${o.flags} is documented`);
  const section = readme.slice(readme.indexOf('## Image assets in CI'), readme.indexOf('## Models'));
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.is(blocks.length, 3, 'the manifest, GitHub Actions and GitLab CI');
  const known = [...BUILD_OPTIONS, ...LOCK_MERGE_OPTIONS].flatMap((o) => o.flags.split(/[ ,]+/).filter((f) => f.startsWith('-')));
  for (const block of blocks.slice(1)) {
    assert.type(jsYaml.load(block), 'object');
    const commands = [...block.matchAll(/npx diffuse (build|lock merge)([^\n]*)/g)];
    assert.ok(commands.length >= 2);
    for (const [, , args] of commands) for (const flag of args!.match(/(?<=\s)--?[a-z][\w-]*/g) ?? []) assert.ok(known.includes(flag), `${flag} in a CI example`);
  }
});

test("the README's manifest is read as it says: 8 outputs, the matrix expanded, the post-steps parsed", () => {
  const section = readme.slice(readme.indexOf('## Image assets in CI'), readme.indexOf('## Models'));
  const dir = mkdtempSync(join(tmpdir(), 'diffuse-readme-'));
  try {
    mkdirSync(join(dir, 'sketches'));
    writeFileSync(join(dir, 'sketches/banner.png'), '');
    const assets = manifestAssets(manifestOf(jsYaml.load(/```yaml\n([\s\S]*?)```/.exec(section)![1]!), 'assets.yaml'), dir);
    assert.equal(assets.map((a) => a.path), ['img/banner.jpg', 'img/hero.png', ...['cat', 'fox', 'whale'].flatMap((a) => [1, 2].map((seed) => `img/icon-${a}-${seed}.webp`))]);
    const icon = assets.find((a) => a.path === 'img/icon-cat-2.webp')!;
    assert.equal([icon.prompt, icon.values.seed, icon.values.sampler, icon.post], ['an icon of a cat, flat vector art, pastel colours', '2', 'DPM++ 2M Karras', { resize: { width: 128, height: 128 }, quality: 90 }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
