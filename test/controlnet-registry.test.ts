import { readFileSync, readdirSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { validateRegistry } from '../src/models/registry.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { registryJsonFor, startHubServer, type HubServer } from './helpers/hub-server.js';
import { writeDiffusersFolder } from './helpers/synthetic-checkpoint.js';

/**
 * The registry's ControlNets (`"controlnets"` in models.json: lllyasviel's v1.1 diffusers repos): `--control
 * model=control_v11p_sd15_canny` is refused with the pull command until pulled; with --yes the entry's two files come
 * from a local server in the Hub's layout (controlnet-files' `tiny` diffusers folder standing in for lllyasviel's, plus
 * a file that must not come), are converted once, recorded by the id as sd-webui-controlnet names the model, and paint
 * what the same folder given by path paints. An id used as --model, and an SD 1.x ControlNet with an SDXL model, are
 * one line each before anything downloads.
 */
const reg = suite('registry ControlNets: --control model=ID, models pull');
const PICTURE = join(FIXTURES, 'controlnet-pipeline', 'control.a.png');
const ID = 'control_v11p_sd15_canny';
const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { controlnets: Array<Record<string, unknown> & { id: string; files: string[] }> };
const entry = real.controlnets.find((m) => m.id === ID)!;
let server: HubServer;
let env: NodeJS.ProcessEnv;
let model: AssembledModel;
let dir: string;
let folder: string;

reg.before(async () => {
  dir = tempDir();
  model = assembleModel('tiny-sd-control');
  folder = writeDiffusersFolder(join(dir, ID), 'tiny', { layoutDir: join(FIXTURES, 'controlnet-files'), tokenizers: {} });
  server = await startHubServer();
  const weights = readFileSync(join(folder, 'diffusion_pytorch_model.safetensors'));
  server.addRepo({
    id: 'test-org/cn',
    revisions: {
      main: [
        { path: 'config.json', data: readFileSync(join(folder, 'config.json')), lfs: false },
        { path: 'diffusion_pytorch_model.fp16.safetensors', data: weights, lfs: true },
        { path: 'diffusion_pytorch_model.bin', data: Buffer.from('not wanted'), lfs: true },
      ],
    },
  });
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
  const path = join(dir, 'registry.json');
  writeFileSync(path, JSON.stringify({ ...registry, controlnets: [{ ...entry, repo: 'test-org/cn', revision: 'main' }] }));
  env = { DIFFUSE_HOME: join(dir, 'home'), HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
reg.after(async () => {
  await server.close();
  model.remove();
});

reg("models.json's ControlNets validate: SD 1.x, OpenRAIL, config.json and one weight file each", () => {
  const registry = validateRegistry(real);
  assert.ok(registry.controlnets.length >= 7);
  for (const m of registry.controlnets) {
    assert.is(m.family, 'sd1', m.id);
    assert.is(m.license.name, 'OpenRAIL', m.id);
    assert.is(m.repo, `lllyasviel/${m.id}`);
    assert.equal(m.files, ['config.json', 'diffusion_pytorch_model.fp16.safetensors'], m.id);
  }
  assert.throws(() => validateRegistry({ ...real, controlnets: [{ ...entry, files: ['diffusion_pytorch_model.safetensors'] }] }), /must list config\.json and one diffusion_pytorch_model/);
  assert.throws(() => validateRegistry({ ...real, controlnets: [{ ...entry, family: 'sd3' }] }), /family/);
});

const run = (out: string, control: string, extra: string[] = [], options = env) =>
  diffuseAsync(['txt2img', 'a lighthouse', '--model', model.dir, '--steps', '3', '--seed', '5', '-o', out, '--quiet', '--control', `type=canny,image=${PICTURE},model=${control}`, ...extra], { env: options });

/** Converted ControlNet folders in the cache. */
const converted = (): string[] => (existsSync(join(env.DIFFUSE_HOME!, 'converted')) ? readdirSync(join(env.DIFFUSE_HOME!, 'converted')).filter((n) => n.startsWith('controlnet-')) : []);

reg('not pulled: refused with the pull command; with --yes pulled (its files only), converted once, named by its id; offline again the same picture', async () => {
  const refused = await run(join(dir, 'refused.png'), ID);
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /diffuse models pull control_v11p_sd15_canny/);
  assert.equal(converted(), []);

  const out = join(dir, 'pulled.png');
  const first = await run(out, ID, ['--yes']);
  assert.is(first.status, 0, first.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  const unit = meta.parameters.extra['ControlNet 0'] ?? '';
  assert.match(unit, /^Module: canny, Model: control_v11p_sd15_canny \[[0-9a-f]{8}\], Weight: 1\.0,/);
  assert.is(converted().length, 1);

  const pulled = await diffuseAsync(['models', 'pull', ID, '--quiet'], { env });
  assert.is(pulled.status, 0, pulled.stderr);
  assert.equal(listFiles(pulled.stdout.trim()), [...entry.files].sort());

  // The same weights given as a folder of the same name: the same file, pixels and record (name and hash).
  const byPath = join(dir, 'path.png');
  const local = await run(byPath, folder, [], { ...env, DIFFUSE_HOME: join(dir, 'home-path') });
  assert.is(local.status, 0, local.stderr);
  assert.equal(readFileSync(byPath), readFileSync(out));

  // --from names the registry id (as it would for an A1111 image of lllyasviel's control_v11p_sd15_canny.pth)
  const from = await diffuseAsync(['txt2img', '--from', out, '--model', model.dir, '--steps', '1', '-o', join(dir, 'from.png')], { env });
  assert.is(from.status, 0, from.stderr);
  assert.match(from.stderr, `pass --control type=canny,image=<picture>,model=${ID},weight=1,start=0,end=1`);

  const again = join(dir, 'again.png');
  const offline = await run(again, ID, [], { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' });
  assert.is(offline.status, 0, offline.stderr);
  assert.equal(readFileSync(again), readFileSync(out));
  assert.is(converted().length, 1);
});

reg('a ControlNet id as --model, and an SD 1.x ControlNet with an SDXL model: exit 2, one line, nothing downloaded', async () => {
  const before = server.requests.length;
  const asModel = await diffuseAsync(['txt2img', 'x', '--model', 'control_v11p_sd15_canny', '--steps', '1', '-o', join(dir, 'm.png'), '--yes'], { env });
  assert.is(asModel.status, 2, asModel.stderr);
  assert.is(asModel.stderr.trim().split('\n').length, 1, asModel.stderr);
  assert.match(asModel.stderr, /control_v11p_sd15_canny is a ControlNet; pass it as --control type=…,image=…,model=control_v11p_sd15_canny, not as a model/);

  const sdxl = await diffuseAsync(['txt2img', 'x', '--model', join(FIXTURES, 'tiny-sdxl'), '--steps', '1', '-o', join(dir, 'x.png'), '--yes', '--control', `type=canny,image=${PICTURE},model=${ID}`], { env: { ...env, DIFFUSE_HOME: join(dir, 'home-sdxl') } });
  assert.is(sdxl.status, 2, sdxl.stderr);
  assert.is(sdxl.stderr.trim().split('\n').length, 1, sdxl.stderr);
  assert.match(sdxl.stderr, /--control: model=control_v11p_sd15_canny is an SD 1\.x ControlNet and .*tiny-sdxl is an SDXL model/);
  assert.is(server.requests.length, before, 'no request reached the Hub');
  assert.not.ok(existsSync(join(dir, 'm.png')) || existsSync(join(dir, 'x.png')));
});

reg.run();
