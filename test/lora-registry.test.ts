import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { validateRegistry } from '../src/models/registry.js';
import { resolveSampler } from '../src/schedulers/names.js';
import { TINY_SD, diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { registryJsonFor, startHubServer, type HubServer } from './helpers/hub-server.js';
import { LORA_FIXTURES } from './helpers/lora-fixtures.js';

/**
 * The registry's LoRAs (`"loras"` in models.json: LCM-LoRA, SDXL-Lightning): `<lora:ID:w>` with no file of that name in
 * --lora-dir is refused with the pull command until pulled; with --yes the entry's one file comes from a local server in
 * the Hub's layout (tiny-sd's kohya LoRA standing in), is merged as the same file from --lora-dir is, and the entry's
 * recommended sampler, schedule, steps and CFG stand in for what the command leaves unset. A file of that name in
 * --lora-dir wins; a LoRA of another family is one line before anything downloads.
 */
const reg = suite('registry LoRAs: <lora:ID>, recommended settings, models pull');
const ID = 'test-lcm-lora';
const FILE = 'pytorch_lora_weights.safetensors';
const RECOMMENDED = { sampler: 'euler', schedule: 'sgm_uniform', steps: 3, cfg: 1.5 };
const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { loras: Array<Record<string, unknown> & { id: string; files: string[] }> };
let server: HubServer;
let env: NodeJS.ProcessEnv;
let dir: string;

reg.before(async () => {
  dir = tempDir();
  server = await startHubServer();
  server.addRepo({
    id: 'test-org/lora',
    revisions: {
      main: [
        { path: FILE, data: readFileSync(join(LORA_FIXTURES, 'tiny_kohya.safetensors')), lfs: true },
        { path: 'README.md', data: Buffer.from('not wanted'), lfs: false },
      ],
    },
  });
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
  const entry = (id: string, family: string) => ({
    id, name: id, family, recommended: RECOMMENDED, repo: 'test-org/lora', revision: 'main', files: [FILE], bytes: 1000,
    license: { name: 'MIT', url: 'https://example.com/licence' },
  });
  const path = join(dir, 'registry.json');
  writeFileSync(path, JSON.stringify({ ...registry, loras: [entry(ID, 'sd1'), entry('test-xl-lora', 'sdxl')] }));
  env = { DIFFUSE_HOME: join(dir, 'home'), HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
reg.after(async () => {
  await server.close();
});

reg("models.json's LoRAs validate: one .safetensors each, a family, a licence, a recommendation diffuse's samplers know", () => {
  const registry = validateRegistry(real);
  assert.ok(registry.loras.length >= 5);
  for (const l of registry.loras) {
    assert.is(l.files.length, 1, l.id);
    assert.ok(l.recommended, l.id);
    assert.not.throws(() => resolveSampler(l.recommended!.sampler, l.recommended!.schedule), l.id);
    assert.is(l.recommended!.cfg, 1, `${l.id}: distillation LoRAs run without classifier-free guidance`);
  }
  const lightning = registry.loras.filter((l) => l.id.startsWith('sdxl-lightning-'));
  for (const l of lightning) assert.is(l.recommended!.steps, Number(/(\d)step/.exec(l.files[0]!)![1]), `${l.id}: its own step count`);
  const base = real.loras[0]!;
  assert.throws(() => validateRegistry({ ...real, loras: [{ ...base, files: ['lora.ckpt'] }] }), /must be one \.safetensors file/);
  assert.throws(() => validateRegistry({ ...real, loras: [{ ...base, recommended: { sampler: 'lcm' } }] }), /recommended\.schedule/);
  assert.throws(() => validateRegistry({ ...real, loras: [{ ...base, family: 'sd3' }] }), /family/);
});

const run = (out: string, prompt: string, extra: string[] = [], options = env) =>
  diffuseAsync(['txt2img', prompt, '--model', TINY_SD, '--seed', '21', '-o', out, '--quiet', ...extra], { env: options });

function parameters(file: string) {
  const meta = readGenerationMetadata(readFileSync(file));
  if (meta.kind !== 'a1111') throw new Error('no parameters');
  return meta.parameters;
}

reg('not pulled: refused with the pull command; with --yes pulled (its file only), merged as the same file from --lora-dir, with the recommended settings', async () => {
  const refused = await run(join(dir, 'refused.png'), `a red fox <lora:${ID}:0.8>`);
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, `diffuse models pull ${ID}`);
  assert.not.ok(existsSync(join(dir, 'refused.png')));

  const out = join(dir, 'pulled.png');
  const first = await run(out, `a red fox <lora:${ID}:0.8>`, ['--yes']);
  assert.is(first.status, 0, first.stderr);
  const p = parameters(out);
  assert.is(p.steps, RECOMMENDED.steps);
  assert.is(p.sampler, 'Euler');
  assert.is(p.scheduleType, 'SGM Uniform');
  assert.is(p.cfgScale, RECOMMENDED.cfg);
  assert.match(p.extra['Lora hashes'] ?? '', new RegExp(`^${ID}: [0-9a-f]{12}$`));

  const pulled = await diffuseAsync(['models', 'pull', ID, '--quiet'], { env });
  assert.is(pulled.status, 0, pulled.stderr);
  assert.equal(listFiles(pulled.stdout.trim()), [FILE]);

  // The same file in --lora-dir under the same name, with the settings spelled out: the same picture and record.
  const loras = join(dir, 'loras');
  mkdirSync(loras, { recursive: true });
  copyFileSync(join(LORA_FIXTURES, 'tiny_kohya.safetensors'), join(loras, `${ID}.safetensors`));
  const byDir = join(dir, 'by-dir.png');
  const explicit = ['--sampler', 'euler', '--schedule', 'sgm_uniform', '--steps', '3', '--cfg-scale', '1.5', '--lora-dir', loras, '--offline'];
  const local = await run(byDir, `a red fox <lora:${ID}:0.8>`, explicit, { ...env, DIFFUSE_HOME: join(dir, 'home-dir') });
  assert.is(local.status, 0, local.stderr);
  assert.equal(readFileSync(byDir), readFileSync(out));

  // What the command sets wins over the LoRA's recommendation.
  const own = join(dir, 'own.png');
  const mine = await run(own, `a red fox <lora:${ID}:0.8>`, ['--steps', '2', '--offline']);
  assert.is(mine.status, 0, mine.stderr);
  assert.is(parameters(own).steps, 2);
  assert.is(parameters(own).sampler, 'Euler');
});

reg('a file of the same name in --lora-dir wins: the registry is not asked', async () => {
  const loras = join(dir, 'loras-first');
  mkdirSync(loras, { recursive: true });
  copyFileSync(join(LORA_FIXTURES, 'tiny_kohya.safetensors'), join(loras, 'test-xl-lora.safetensors'));
  const before = server.requests.length;
  const out = join(dir, 'local-first.png');
  const r = await run(out, 'a red fox <lora:test-xl-lora:0.5>', ['--steps', '1', '--lora-dir', loras, '--yes'], { ...env, DIFFUSE_HOME: join(dir, 'home-local') });
  assert.is(r.status, 0, r.stderr);
  assert.is(server.requests.length, before, 'no request reached the Hub');
  assert.is(parameters(out).steps, 1);
});

reg('an SDXL LoRA of the registry with an SD 1.x model, and an unknown name without --lora-dir: exit 2, one line, nothing downloaded', async () => {
  const before = server.requests.length;
  const other = await run(join(dir, 'xl.png'), 'a red fox <lora:test-xl-lora:1>', ['--yes'], { ...env, DIFFUSE_HOME: join(dir, 'home-xl') });
  assert.is(other.status, 2, other.stderr);
  assert.is(other.stderr.trim().split('\n').length, 1, other.stderr);
  assert.match(other.stderr, /<lora:test-xl-lora> is an SDXL LoRA and .*tiny-sd is an SD 1\.x\/2\.x model; use a LoRA of the model's family/);

  const unknown = await run(join(dir, 'unknown.png'), 'a red fox <lora:nowhere:1>', ['--yes'], { ...env, DIFFUSE_HOME: join(dir, 'home-xl') });
  assert.is(unknown.status, 2, unknown.stderr);
  assert.is(unknown.stderr.trim().split('\n').length, 1, unknown.stderr);
  assert.match(unknown.stderr, /no --lora-dir is set; pass --lora-dir <folder>/);
  assert.is(server.requests.length, before, 'no request reached the Hub');
  assert.not.ok(existsSync(join(dir, 'xl.png')) || existsSync(join(dir, 'unknown.png')));
});

reg.run();
