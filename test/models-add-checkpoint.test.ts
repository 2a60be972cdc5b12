import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { diffuseAsync, tempDir } from './helpers/cli.js';
import { writeCheckpoint } from './helpers/synthetic-checkpoint.js';
import { vaeFixtures, writeVaeFile } from './helpers/vae-files.js';

/**
 * `diffuse models add ./model.safetensors --id name`: a single-file checkpoint under a name,
 * converted on first use (src/graphs) and found converted after; `models rm` forgets it and deletes
 * its conversion (and the graphs derived from that), `models prune` deletes conversions whose file
 * is gone, VAE files' included.
 */
const s = suite('models add FILE, rm, prune');
let home: string;
let work: string;
let env: NodeJS.ProcessEnv;

s.before(() => {
  home = tempDir('diffuse-home-');
  work = tempDir();
  env = { DIFFUSE_HOME: home };
});
s.after(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

const converted = (): string[] => (existsSync(join(home, 'converted')) ? readdirSync(join(home, 'converted')).filter((n) => !n.endsWith('.json')).sort() : []);
const generate = (model: string, name: string) =>
  diffuseAsync(['txt2img', 'a lighthouse', '--model', model, '-W', '32', '-H', '32', '--steps', '1', '--seed', '1', '-o', join(work, name)], { env });

s('a checkpoint gets an id, converts on first use only, and models rm deletes the conversion but not the file', async () => {
  const file = writeCheckpoint(work, 'sd1', 'dreamy.safetensors');
  const add = await diffuseAsync(['models', 'add', file, '--id', 'dreamy'], { env });
  assert.is(add.status, 0, add.stderr);
  assert.match(add.stdout, /dreamy → .*dreamy\.safetensors \(a checkpoint: converted on first use\)/);
  assert.equal(converted(), [], 'nothing converted yet');
  const list = JSON.parse((await diffuseAsync(['models', 'list', '--json'], { env })).stdout) as { local: Array<{ id: string; path: string; checkpoint?: boolean }> };
  assert.equal(list.local.map((l) => [l.id, l.path, l.checkpoint]), [['dreamy', file, true]]);

  const first = await generate('dreamy', 'a.png');
  assert.is(first.status, 0, first.stderr);
  assert.match(first.stderr, /converting/);
  assert.is(converted().length, 1);
  const second = await generate('dreamy', 'b.png');
  assert.is(second.status, 0, second.stderr);
  assert.not.match(second.stderr, /converting/);
  assert.equal(readFileSync(join(work, 'a.png')), readFileSync(join(work, 'b.png')));
  assert.ok(readdirSync(join(home, 'graphs')).length > 0, 'the fused-attention graph of the conversion is cached');

  const rm = await diffuseAsync(['models', 'rm', 'dreamy'], { env });
  assert.is(rm.status, 0, rm.stderr);
  assert.match(rm.stdout, /forgot .*dreamy\.safetensors/);
  assert.match(rm.stdout, /deleted .*converted/);
  assert.equal(converted(), []);
  assert.equal(readdirSync(join(home, 'graphs')), [], 'and what was derived from it');
  assert.ok(existsSync(file), 'the checkpoint itself is the user`s');
});

s('a file that is not a whole checkpoint is refused in one line and not registered', async () => {
  const vae = writeVaeFile(work, vaeFixtures().kl.ldm.recipe, 'vae.safetensors');
  const add = await diffuseAsync(['models', 'add', vae, '--id', 'vae'], { env });
  assert.is(add.status, 2);
  assert.match(add.stderr, /not a complete Stable Diffusion checkpoint/);
  assert.is(add.stderr.trim().split('\n').length, 1, add.stderr);
  const list = JSON.parse((await diffuseAsync(['models', 'list', '--json'], { env })).stdout) as { local: unknown[] };
  assert.equal(list.local, []);
});

s('models prune deletes conversions of checkpoints and VAE files that were deleted; convert --id folders go with models rm', async () => {
  const file = writeCheckpoint(work, 'sd1', 'gone.safetensors');
  const vae = writeVaeFile(work, vaeFixtures().kl.ldm.recipe, 'gone-vae.safetensors');
  const gen = await diffuseAsync(['txt2img', 'x', '--model', file, '--vae', vae, '-W', '32', '-H', '32', '--steps', '1', '--quiet', '-o', join(work, 'c.png')], { env });
  assert.is(gen.status, 0, gen.stderr);
  assert.is(converted().length, 2);
  const idle = await diffuseAsync(['models', 'prune'], { env });
  assert.match(idle.stdout, /nothing to prune/);
  rmSync(file);
  rmSync(vae);
  const prune = await diffuseAsync(['models', 'prune'], { env });
  assert.is(prune.status, 0, prune.stderr);
  assert.equal(converted(), []);
  assert.match(prune.stdout, /deleted .*converted.*\n.*deleted .*converted/s);

  const kept = writeCheckpoint(work, 'sd1', 'kept.safetensors');
  const convert = await diffuseAsync(['convert', kept, '--id', 'kept', '--quiet'], { env });
  assert.is(convert.status, 0, convert.stderr);
  assert.is(converted().length, 1);
  const rm = await diffuseAsync(['models', 'rm', 'kept'], { env });
  assert.is(rm.status, 0, rm.stderr);
  assert.equal(converted(), []);
});

s.run();
