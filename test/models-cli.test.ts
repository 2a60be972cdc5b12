import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { registryJsonFor, repoFromFolder, startHubServer, type HubServer } from './helpers/hub-server.js';

/** The real CLI against a local server in the Hub's URL and API layout: pull, then generate. */
const cli = suite('diffuse models + --model hf:');
let server: HubServer;
let home: string;
let env: NodeJS.ProcessEnv;

cli.before(async () => {
  server = await startHubServer();
  const files = await repoFromFolder(TINY_SD);
  server.addRepo({ id: 'test-org/tiny-sd', revisions: { main: files } });
  server.addRepo({ id: 'test-org/tiny-sd-2', revisions: { main: files } });
  home = tempDir('diffuse-home-');
  env = { DIFFUSE_HOME: home, HF_ENDPOINT: server.endpoint, HF_TOKEN: '' };
});
cli.after(async () => {
  await server.close();
});

cli('pull, then txt2img from the cache without the network', async () => {
  const pull = await diffuseAsync(['models', 'pull', 'hf:test-org/tiny-sd', '--quiet'], { env });
  assert.is(pull.status, 0, pull.stderr);
  const dir = pull.stdout.trim();
  assert.ok(dir.startsWith(home), `pulled into the cache: ${dir}`);
  assert.ok(listFiles(dir).includes(join('unet', 'model.onnx')));
  assert.not.ok(listFiles(dir).some((f) => f.endsWith('.part')), 'no partial files');
  const out = tempDir();
  const offlineEnv = { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' };
  const gen = await diffuseAsync(['txt2img', 'a lighthouse', '--model', 'hf:test-org/tiny-sd', '--offline', '--steps', '2', '--seed', '8', '--quiet', '-o', join(out, 'a.png')], { env: offlineEnv });
  assert.is(gen.status, 0, gen.stderr);
  const meta = readGenerationMetadata(readFileSync(join(out, 'a.png')));
  assert.is(meta.kind, 'a1111');
  const path = await diffuseAsync(['models', 'path', 'hf:test-org/tiny-sd'], { env: offlineEnv });
  assert.is(path.stdout.trim(), dir);
});

cli('an uncached model in a script: refused with the pull command, downloaded with --yes', async () => {
  const out = tempDir();
  const args = ['txt2img', 'x', '--model', 'hf:test-org/tiny-sd-2', '--steps', '2', '--seed', '1', '--quiet', '-o', join(out, 'x.png')];
  const refused = await diffuseAsync(args, { env });
  assert.is(refused.status, 1);
  assert.match(refused.stderr, /diffuse models pull hf:test-org\/tiny-sd-2/);
  assert.match(refused.stderr, /--yes/);
  assert.equal(listFiles(out), []);
  const offline = await diffuseAsync([...args, '--offline'], { env });
  assert.is(offline.status, 1);
  assert.match(offline.stderr, /--offline/);
  const allowed = await diffuseAsync([...args, '--yes'], { env });
  assert.is(allowed.status, 0, allowed.stderr);
  assert.equal(listFiles(out), ['x.png']);
});

cli('a registry id: pull, then txt2img from the id', async () => {
  const registry = join(home, 'registry.json');
  writeFileSync(registry, JSON.stringify(await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd-2' }])));
  const withRegistry = { ...env, DIFFUSE_REGISTRY: registry };
  const pull = await diffuseAsync(['models', 'pull', 'tiny', '--quiet'], { env: withRegistry });
  assert.is(pull.status, 0, pull.stderr);
  const out = tempDir();
  const gen = await diffuseAsync(['txt2img', 'x', '--model', 'tiny', '--offline', '--steps', '2', '--seed', '2', '--quiet', '-o', join(out, 'x.png')], { env: withRegistry });
  assert.is(gen.status, 0, gen.stderr);
  const list = JSON.parse((await diffuseAsync(['models', 'list', '--json'], { env: withRegistry })).stdout) as { registry: { id: string; installed: unknown }[] };
  assert.ok(list.registry.find((r) => r.id === 'tiny')?.installed, 'listed as installed');
});

cli('list, verify, a corrupted byte, rm', async () => {
  const list = await diffuseAsync(['models', 'list', '--json'], { env });
  assert.is(list.status, 0, list.stderr);
  const listing = JSON.parse(list.stdout) as { otherDownloads: { repo: string; tasks: string[] }[] };
  assert.ok(listing.otherDownloads.some((d) => d.repo === 'test-org/tiny-sd@main' && d.tasks.includes('txt2img')));
  const ok = await diffuseAsync(['models', 'verify', 'hf:test-org/tiny-sd'], { env });
  assert.is(ok.status, 0, ok.stderr);
  const dir = (await diffuseAsync(['models', 'path', 'hf:test-org/tiny-sd'], { env })).stdout.trim();
  const victim = join(dir, 'unet', 'model.onnx');
  const bytes = readFileSync(victim);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(victim, bytes);
  const bad = await diffuseAsync(['models', 'verify', 'hf:test-org/tiny-sd'], { env });
  assert.is(bad.status, 1);
  assert.match(bad.stdout, /sha256 .*unet/);
  const derivedBefore = derivedEntries();
  assert.ok(derivedBefore.some((e) => e.source.startsWith(dir)), 'txt2img cached graphs derived from the model');
  const rm = await diffuseAsync(['models', 'rm', 'hf:test-org/tiny-sd'], { env });
  assert.is(rm.status, 0, rm.stderr);
  // Its edited and optimised graphs go with it (edited ones hold hard links to its weights); the others stay.
  const derivedAfter = derivedEntries();
  assert.not.ok(derivedAfter.some((e) => e.source.startsWith(dir)), JSON.stringify(derivedAfter));
  assert.ok(derivedAfter.length > 0 && derivedAfter.every((e) => existsSync(e.source)), 'tiny-sd-2\'s graphs are kept');
  for (const e of derivedBefore.filter((x) => x.source.startsWith(dir))) assert.match(rm.stdout, e.entry);
  const prune = await diffuseAsync(['models', 'prune'], { env });
  assert.is(prune.stdout.trim(), 'nothing to prune');
  const gone = await diffuseAsync(['models', 'path', 'hf:test-org/tiny-sd'], { env });
  assert.is(gone.status, 1);
});

/** The cached derived graphs in the test home and the model file each was made from. */
function derivedEntries(): { entry: string; source: string }[] {
  return ['graphs', 'optimized'].flatMap((cache) => {
    const dir = join(home, cache);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((name) => existsSync(join(dir, name, 'source.json')))
      .map((name) => ({ entry: join(dir, name), source: (JSON.parse(readFileSync(join(dir, name, 'source.json'), 'utf8')) as { source: string }).source }));
  });
}

cli.run();
