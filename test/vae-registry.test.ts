import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { validateRegistry } from '../src/models/registry.js';
import { TINY_SD, diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { checkpointBytes, type Recipe } from './helpers/synthetic-checkpoint.js';
import { registryJsonFor, startHubServer, type HubServer } from './helpers/hub-server.js';
import { readJson } from './helpers/fixtures.js';
import { VAE_FIXTURES, vaeFixtures } from './helpers/vae-files.js';

/**
 * Registry VAEs (`taesd`, `taesdxl` in models.json): `diffuse models pull taesd` fetches exactly the
 * entry's files from a local server in the Hub's layout, `--vae taesd` then decodes with it offline,
 * and `--preview` picks it up once installed.
 */
const fx = vaeFixtures();
const reg = suite('registry VAEs: models pull taesd, --vae taesd, previews');
let server: HubServer;
let home: string;
let env: NodeJS.ProcessEnv;

const tinyTaesd = (recipe: string): Buffer => Buffer.from(checkpointBytes(readJson<Recipe>(join(VAE_FIXTURES, recipe))));

reg.before(async () => {
  server = await startHubServer();
  server.addRepo({
    id: 'test-org/taesd',
    revisions: {
      main: [
        { path: 'taesd_decoder.safetensors', data: tinyTaesd(fx.taesd_mini.original.decoder), lfs: true },
        { path: 'taesd_encoder.safetensors', data: tinyTaesd(fx.taesd_mini.original.encoder), lfs: true },
        { path: 'diffusion_pytorch_model.safetensors', data: Buffer.from('not wanted'), lfs: true },
        { path: 'README.md', data: Buffer.from('# taesd'), lfs: false },
      ],
    },
  });
  home = tempDir('diffuse-home-');
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
  const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { vaes: Array<Record<string, unknown>> };
  const taesd = { ...real.vaes.find((v) => v.id === 'taesd')!, repo: 'test-org/taesd' };
  const path = join(home, 'registry.json');
  writeFileSync(path, JSON.stringify({ ...registry, vaes: [taesd] }));
  env = { DIFFUSE_HOME: home, HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
reg.after(async () => {
  await server.close();
});

reg('models.json`s VAE entries validate: taesd and taesdxl from madebyollin, MIT, the original decoder/encoder files', () => {
  const registry = validateRegistry(JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')));
  assert.equal(
    registry.vaes.map((v) => [v.id, v.repo, v.family, v.files, v.license.name]),
    [
      ['taesd', 'madebyollin/taesd', 'sd1', ['taesd_decoder.safetensors', 'taesd_encoder.safetensors'], 'MIT'],
      ['taesdxl', 'madebyollin/taesdxl', 'sdxl', ['taesdxl_decoder.safetensors', 'taesdxl_encoder.safetensors'], 'MIT'],
    ],
  );
});

reg('without it, --vae taesd is refused with the pull command; pulled, it decodes offline and previews use it', async () => {
  const out = tempDir();
  const args = ['txt2img', 'a fox', '--model', TINY_SD, '--steps', '3', '--seed', '2', '--quiet'];
  const refused = await diffuseAsync([...args, '--vae', 'taesd', '-o', join(out, 'x.png')], { env });
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /diffuse models pull taesd/);

  const pull = await diffuseAsync(['models', 'pull', 'taesd', '--quiet'], { env });
  assert.is(pull.status, 0, pull.stderr);
  assert.equal(listFiles(pull.stdout.trim()), ['taesd_decoder.safetensors', 'taesd_encoder.safetensors']);

  const offline = { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' };
  const gen = await diffuseAsync([...args, '--vae', 'taesd', '--offline', '-o', join(out, 'a.png')], { env: offline });
  assert.is(gen.status, 0, gen.stderr);
  const meta = readGenerationMetadata(readFileSync(join(out, 'a.png')));
  assert.ok(meta.kind === 'a1111' && meta.parameters.extra['VAE Decoder'] === 'TAESD');

  // Installed, TAESD draws the previews at full size (latent2rgb's are one pixel per latent).
  const preview = join(out, 'preview.png');
  const withPreview = await diffuseAsync([...args, '--offline', '--preview', preview, '--preview-every', '1', '-o', join(out, 'b.png')], { env: offline });
  assert.is(withPreview.status, 0, withPreview.stderr);
  const info = await sharp(preview).metadata();
  assert.equal([info.width, info.height], [32, 32]);

  const list = JSON.parse((await diffuseAsync(['models', 'list', '--json'], { env: offline })).stdout) as { vaes: Array<{ id: string; installed: unknown }> };
  assert.ok(list.vaes.find((v) => v.id === 'taesd')?.installed, 'listed as installed');
});

reg.run();
