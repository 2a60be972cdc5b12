import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { validateRegistry } from '../src/models/registry.js';
import { diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { registryJsonFor, startHubServer, type HubServer } from './helpers/hub-server.js';
import { GRAPH_FIXTURES, checkpointBytes, readRecipe } from './helpers/synthetic-checkpoint.js';

/**
 * The registry's img2txt models (`"interrogators"` in models.json): `--clip clip-vit-large-patch14` is refused with
 * the pull command until pulled; `models pull` fetches exactly the entry's files from a local server in the Hub's
 * layout (the tiny CLIP standing in for Xenova's export, plus a file that must not come), and img2txt then ranks
 * with it as with the folder. blip-base, img2txt's default captioner, is pulled the same way (the synthetic-recipe
 * tiny BLIP's model.safetensors standing in for Salesforce's) and converted to ONNX on first use: its caption is
 * transformers' (tools/make_blip_graph_refs.py).
 */
const DIR = join(FIXTURES, 'tiny-interrogate');
const reg = suite('registry interrogators: models pull, img2txt --clip ID');
let server: HubServer;
let env: NodeJS.ProcessEnv;
const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { interrogators: Array<Record<string, unknown> & { files: string[] }> };
const entry = real.interrogators.find((m) => m.id === 'clip-vit-large-patch14')!;
const blipEntry = real.interrogators.find((m) => m.id === 'blip-base')!;
const blipRefs = readJson<{ cases: { image: string; caption: string }[] }>(join(GRAPH_FIXTURES, 'blip.refs.json.gz'));

reg.before(async () => {
  server = await startHubServer();
  const files = entry.files.map((path) => ({ path, data: readFileSync(join(DIR, 'clip', path)), lfs: path.endsWith('.onnx') }));
  server.addRepo({ id: 'test-org/clip', revisions: { main: [...files, { path: 'onnx/model.onnx', data: Buffer.from('not wanted'), lfs: true }] } });
  const weights = { path: 'model.safetensors', data: Buffer.from(checkpointBytes(readRecipe('blip'))), lfs: true };
  const blipFiles = blipEntry.files.filter((f) => f !== weights.path).map((path) => ({ path, data: readFileSync(join(DIR, 'blip', path)), lfs: false }));
  server.addRepo({ id: 'test-org/blip', revisions: { main: [weights, ...blipFiles, { path: 'pytorch_model.bin', data: Buffer.from('not wanted'), lfs: true }] } });
  const home = tempDir('diffuse-home-');
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
  const path = join(home, 'registry.json');
  writeFileSync(path, JSON.stringify({ ...registry, interrogators: [{ ...entry, repo: 'test-org/clip' }, { ...blipEntry, repo: 'test-org/blip', revision: 'main' }] }));
  env = { DIFFUSE_HOME: home, HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
reg.after(async () => {
  await server.close();
});

reg("models.json's interrogators validate; an entry must list both CLIP graphs, or BLIP's weights and configs", () => {
  const registry = validateRegistry(real);
  assert.equal(registry.interrogators.map((m) => [m.id, m.part]), [['clip-vit-large-patch14', 'clip'], ['blip-base', 'blip'], ['blip-large', 'blip']]);
  assert.ok(registry.interrogators.filter((m) => m.part === 'blip').every((m) => m.license.name === 'BSD-3-Clause' && /^[0-9a-f]{40}$/.test(m.revision)));
  assert.throws(() => validateRegistry({ ...real, interrogators: [{ ...blipEntry, files: ['config.json', 'preprocessor_config.json', 'vocab.txt'] }] }), /must list model\.safetensors/);
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

/** Every converted BLIP folder in the cache, with its modification time. */
function convertedBlips(home: string): [string, number][] {
  const root = join(home, 'converted');
  return existsSync(root) ? readdirSync(root).filter((n) => n.startsWith('blip-v')).map((n) => [n, statSync(join(root, n)).mtimeMs]) : [];
}

reg('no --blip: blip-base, refused with the pull command until pulled; with --yes pulled (its files only), converted once, captions as transformers', async () => {
  const ref = blipRefs.cases.find((c) => c.image === 'ramps-96x64.png')!;
  const refs = readJson<{ cases: { image: string; classicPrompt: string; captions: { caption: string }[] }[] }>(join(DIR, 'refs', 'refs.json'));
  const clipCase = refs.cases.find((c) => c.image === 'ramps-96x64.png')!;
  // the CLIP terms do not depend on the caption (classic mode ranks each list against the picture alone)
  const want = `${ref.caption}${clipCase.classicPrompt.slice(clipCase.captions[0]!.caption.length)}\n`;
  const args = ['img2txt', join(DIR, 'refs', ref.image), '--clip', join(DIR, 'clip'), '--terms', join(DIR, 'terms'), '--threads', '1'];
  const home = env.DIFFUSE_HOME!;
  const refused = await diffuseAsync(args, { env });
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /diffuse models pull blip-base/, refused.stderr);
  assert.is(refused.stdout, '');
  assert.equal(convertedBlips(home), []);

  const first = await diffuseAsync([...args, '--yes'], { env });
  assert.is(first.status, 0, first.stderr);
  assert.is(first.stdout, want);
  const converted = convertedBlips(home);
  assert.is(converted.length, 1);
  const pulled = await diffuseAsync(['models', 'pull', 'blip-base', '--quiet'], { env });
  assert.is(pulled.status, 0, pulled.stderr);
  assert.equal(listFiles(pulled.stdout.trim()), [...blipEntry.files].sort());

  // pulled and converted: offline, the same caption from the same converted folder, nothing made again
  const again = await diffuseAsync([...args, '--blip', 'blip-base'], { env: { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' } });
  assert.is(again.status, 0, again.stderr);
  assert.is(again.stdout, want);
  assert.equal(convertedBlips(home), converted);

  const swapped = await diffuseAsync([...args, '--clip', 'blip-base'], { env });
  assert.is(swapped.status, 2);
  assert.match(swapped.stderr, /--clip blip-base is a BLIP model; pass it as --blip/);
});

reg.run();
