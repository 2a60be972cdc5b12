import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { validateRegistry } from '../src/models/registry.js';
import { diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { registryJsonFor, startHubServer, type HubServer } from './helpers/hub-server.js';

/**
 * The registry's img2txt model (`"interrogators"` in models.json): `--clip clip-vit-large-patch14` is refused with
 * the pull command until pulled; `models pull` fetches exactly the entry's files from a local server in the Hub's
 * layout (the tiny CLIP standing in for Xenova's export, plus a file that must not come), and img2txt then ranks
 * with it as with the folder.
 */
const DIR = join(FIXTURES, 'tiny-interrogate');
const reg = suite('registry interrogators: models pull, img2txt --clip ID');
let server: HubServer;
let env: NodeJS.ProcessEnv;
const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { interrogators: Array<Record<string, unknown> & { files: string[] }> };
const entry = real.interrogators.find((m) => m.id === 'clip-vit-large-patch14')!;

reg.before(async () => {
  server = await startHubServer();
  const files = entry.files.map((path) => ({ path, data: readFileSync(join(DIR, 'clip', path)), lfs: path.endsWith('.onnx') }));
  server.addRepo({ id: 'test-org/clip', revisions: { main: [...files, { path: 'onnx/model.onnx', data: Buffer.from('not wanted'), lfs: true }] } });
  const home = tempDir('diffuse-home-');
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
  const path = join(home, 'registry.json');
  writeFileSync(path, JSON.stringify({ ...registry, interrogators: [{ ...entry, repo: 'test-org/clip' }] }));
  env = { DIFFUSE_HOME: home, HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
reg.after(async () => {
  await server.close();
});

reg("models.json's interrogators validate; an entry must list both CLIP graphs", () => {
  const registry = validateRegistry(real);
  assert.equal(registry.interrogators.map((m) => [m.id, m.part]), [['clip-vit-large-patch14', 'clip']]);
  assert.throws(() => validateRegistry({ ...real, interrogators: [{ ...entry, files: ['onnx/text_model.onnx'] }] }), /must list onnx\/vision_model\.onnx/);
  assert.throws(() => validateRegistry({ ...real, interrogators: [{ ...entry, part: 'blip2' }] }), /part/);
});

reg('not pulled: refused with the pull command; pulled: exactly its files, and img2txt ranks with them', async () => {
  const image = join(DIR, 'refs', 'ramps-96x64.png');
  const args = ['img2txt', image, '--clip', 'clip-vit-large-patch14', '--blip', join(DIR, 'blip'), '--terms', join(DIR, 'terms'), '--threads', '1'];
  const refused = await diffuseAsync(args, { env });
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /diffuse models pull clip-vit-large-patch14/);

  const pull = await diffuseAsync(['models', 'pull', 'clip-vit-large-patch14', '--quiet'], { env });
  assert.is(pull.status, 0, pull.stderr);
  assert.equal(listFiles(pull.stdout.trim()), [...entry.files].sort());

  const run = await diffuseAsync(args, { env: { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' } });
  assert.is(run.status, 0, run.stderr);
  const refs = readJson<{ cases: { image: string; classicPrompt: string }[] }>(join(DIR, 'refs', 'refs.json'));
  assert.is(run.stdout, `${refs.cases.find((c) => c.image === 'ramps-96x64.png')!.classicPrompt}\n`);
});

reg.run();
