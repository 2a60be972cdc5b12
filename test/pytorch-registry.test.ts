import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { loadImage } from '../src/image/load-image.js';
import { diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { registryJsonFor, repoFromFolder, startHubServer, type HubServer } from './helpers/hub-server.js';
import { writeDiffusersFolder } from './helpers/synthetic-checkpoint.js';

/**
 * A registry entry whose repo holds diffusers' PyTorch layout (`"format": "pytorch"`, as stabilityai/sd-turbo):
 * `models pull` fetches the configs, tokenizer and float32 safetensors of its five folders (never the fp16
 * variants or the single-file checkpoint beside them), the first generation converts the snapshot (once: a second
 * run finds it in the cache, offline), and the entry's defaults (1 step, Euler, no CFG) apply. The tiny stand-in is
 * the synthetic-recipe SD 1.x folder with sd-turbo's scheduler config. `--model ./folder` converts a PyTorch
 * folder the same way, with the same result.
 */
const S = suite('registry: a PyTorch diffusers repo, pulled and converted on first use');
let server: HubServer;
let env: NodeJS.ProcessEnv;
let folder: string;
let home: string;
const offline = () => ({ ...env, HF_ENDPOINT: 'http://127.0.0.1:9' });
const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { models: Array<Record<string, unknown>> };
const turbo = real.models.find((m) => m.id === 'sd-turbo')!;
// stabilityai/sd-turbo's scheduler/scheduler_config.json (the keys diffusers reads)
const TURBO_SCHEDULER = { _class_name: 'EulerDiscreteScheduler', beta_end: 0.012, beta_schedule: 'scaled_linear', beta_start: 0.00085, clip_sample: false, interpolation_type: 'linear', num_train_timesteps: 1000, prediction_type: 'epsilon', set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, timestep_spacing: 'trailing', timestep_type: 'discrete', trained_betas: null, use_karras_sigmas: false };
const PULLED = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'text_encoder/config.json',
  'text_encoder/model.safetensors',
  'tokenizer/merges.txt',
  'tokenizer/special_tokens_map.json',
  'tokenizer/tokenizer_config.json',
  'tokenizer/vocab.json',
  'unet/config.json',
  'unet/diffusion_pytorch_model.safetensors',
  'vae/config.json',
  'vae/diffusion_pytorch_model.safetensors',
];

S.before(async () => {
  const work = tempDir('diffuse-pytorch-repo-');
  folder = writeDiffusersFolder(join(work, 'turbo'), 'sd1');
  writeFileSync(join(folder, 'scheduler', 'scheduler_config.json'), JSON.stringify(TURBO_SCHEDULER));
  server = await startHubServer();
  const junk = (path: string) => ({ path, data: Buffer.from(`${path}: not wanted`), lfs: true });
  server.addRepo({ id: 'test-org/turbo', revisions: { main: [...(await repoFromFolder(folder)), junk('unet/diffusion_pytorch_model.fp16.safetensors'), junk('text_encoder/model.fp16.safetensors'), junk('sd_turbo.safetensors')] } });
  home = tempDir('diffuse-home-');
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as { models: unknown[] };
  // the tiny stand-in is SD 1.x-shaped; everything else is the real entry's
  registry.models.push({ ...turbo, repo: 'test-org/turbo', revision: 'main', family: 'sd1' });
  const path = join(home, 'registry.json');
  writeFileSync(path, JSON.stringify(registry));
  env = { DIFFUSE_HOME: home, HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
S.after(async () => {
  await server.close();
});

function converted(): [string, number][] {
  const root = join(home, 'converted');
  return existsSync(root) ? readdirSync(root).filter((n) => statSync(join(root, n)).isDirectory()).map((n) => [n, statSync(join(root, n)).mtimeMs]) : [];
}

async function pixels(path: string): Promise<Buffer> {
  return Buffer.from((await loadImage(readFileSync(path))).rgb.data);
}

S('refused with the pull command; pulled: the five folders\' configs and float32 safetensors only', async () => {
  const out = join(tempDir('diffuse-turbo-out-'), 'a.png');
  const refused = await diffuseAsync(['txt2img', 'a cat', '--model', 'sd-turbo', '-W', '32', '-H', '32', '-q', '-o', out], { env });
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /diffuse models pull sd-turbo/);
  assert.not.ok(existsSync(out));
  const pull = await diffuseAsync(['models', 'pull', 'sd-turbo', '--quiet'], { env });
  assert.is(pull.status, 0, pull.stderr);
  assert.equal(listFiles(pull.stdout.trim()), PULLED);
  const list = await diffuseAsync(['models', 'list'], { env: offline() });
  assert.match(list.stdout.replace(/\x1b\[[0-9;]*m/g, ''), /sd-turbo\s+installed \(txt2img, img2img;/, list.stdout);
});

S("first use converts the snapshot (once), the entry's defaults apply (1 Euler step, CFG 0); --model ./folder converts the same way, same pixels", async () => {
  const dir = tempDir('diffuse-turbo-out-');
  const args = (model: string, out: string) => ['txt2img', 'a cat', '--model', model, '-W', '32', '-H', '32', '--seed', '3', '-q', '-o', join(dir, out)];
  const first = await diffuseAsync(args('sd-turbo', 'a.png'), { env: offline() });
  assert.is(first.status, 0, first.stderr);
  const meta = readGenerationMetadata(readFileSync(join(dir, 'a.png')));
  assert.ok(meta.kind === 'a1111');
  if (meta.kind !== 'a1111') return;
  assert.equal([meta.parameters.steps, meta.parameters.sampler, meta.parameters.cfgScale], [1, 'Euler', 0]);
  const once = converted();
  assert.is(once.length, 1);

  const again = await diffuseAsync(args('sd-turbo', 'b.png'), { env: offline() });
  assert.is(again.status, 0, again.stderr);
  assert.equal(converted(), once, 'converted once');
  assert.ok((await pixels(join(dir, 'b.png'))).equals(await pixels(join(dir, 'a.png'))));

  const fromFolder = await diffuseAsync([...args(folder, 'c.png'), '--steps', '1', '--sampler', 'euler', '--cfg-scale', '0'], { env: offline() });
  assert.is(fromFolder.status, 0, fromFolder.stderr);
  assert.is(converted().length, 2);
  assert.ok((await pixels(join(dir, 'c.png'))).equals(await pixels(join(dir, 'a.png'))), 'the folder and the pulled snapshot are the same model');

  const added = await diffuseAsync(['models', 'add', folder, '--id', 'mine'], { env: offline() });
  assert.is(added.status, 0, added.stderr);
  assert.match(added.stdout, /mine → .* \(a checkpoint: converted on first use\)/);
});

S.run();
