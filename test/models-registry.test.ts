import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RegistryError } from '../src/models/errors.js';
import { approxDownloadBytes, componentsFor, findEntry, globToRegExp, loadRegistry, validateRegistry } from '../src/models/registry.js';
import { wantedFiles } from '../src/models/target.js';

const RAW = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as Record<string, unknown>;

/** A deep copy of models.json with `mutate` applied to it. */
function variant(mutate: (raw: any) => void): unknown {
  const copy = structuredClone(RAW);
  mutate(copy);
  return copy;
}

function problemsOf(raw: unknown): string {
  try {
    validateRegistry(raw, 'test.json');
  } catch (err) {
    assert.instance(err, RegistryError);
    assert.is((err as RegistryError).exitCode, 1);
    return (err as Error).message;
  }
  assert.unreachable('validateRegistry accepted a bad registry');
  return '';
}

test('models.json is valid and its default is a few-step model', () => {
  const registry = loadRegistry();
  const ids = registry.models.map((m) => m.id);
  for (const id of ['sd15', 'sd15-onnx-community', 'sd15-inpaint', 'sd21', 'lcm-dreamshaper-v7']) assert.ok(ids.includes(id), id);
  const def = findEntry(registry, registry.default)!;
  assert.ok(def.recommended.steps <= 8, 'the CPU default should need few steps');
  assert.ok(registry.defaultReason.length > 20);
});

test('entries: revisions, families, predictions and resolutions as the Hub repos document them', () => {
  const registry = loadRegistry();
  const e = (id: string) => findEntry(registry, id)!;
  assert.is(e('sd15').revision, 'onnx');
  assert.is(e('sd15-inpaint').revision, 'onnx');
  assert.equal(e('sd15-inpaint').tasks, ['inpaint']);
  assert.is(e('sd21').prediction, 'v_prediction');
  assert.equal(e('sd21').resolution, [768, 768]);
  assert.is(e('sd21').family, 'sd2');
  for (const m of registry.models) assert.ok(m.license.url.startsWith('https://'), m.id);
});

test('task components: img2img and inpaint add vae_encoder, the safety checker only on request', () => {
  const registry = loadRegistry();
  const txt = componentsFor(registry, { task: 'txt2img' });
  assert.equal(txt.sort(), ['scheduler', 'text_encoder', 'tokenizer', 'unet', 'vae_decoder']);
  assert.ok(componentsFor(registry, { task: 'img2img' }).includes('vae_encoder'));
  assert.ok(componentsFor(registry, { task: 'inpaint' }).includes('vae_encoder'));
  assert.not.ok(componentsFor(registry, { task: 'inpaint' }).includes('safety_checker'));
  assert.ok(componentsFor(registry, { task: 'txt2img', safetyChecker: true }).includes('safety_checker'));
  const sd15 = findEntry(registry, 'sd15')!;
  // Sum of the registry's own per-component sizes: text_encoder + tokenizer + unet + vae_decoder + scheduler.
  assert.is(approxDownloadBytes(registry, sd15, { task: 'txt2img' }), 492000000 + 1600000 + 3440000000 + 198000000 + 1000);
});

test("SDXL: text_encoder_2/ and tokenizer_2/ come along where a repo has them, and the SDXL entries count them", () => {
  const registry = loadRegistry();
  const sd = ['model_index.json', 'scheduler/scheduler_config.json', 'text_encoder/model.onnx', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'unet/model.onnx', 'vae_decoder/model.onnx'];
  const xl = [...sd, 'text_encoder_2/model.onnx', 'text_encoder_2/model.onnx_data', 'text_encoder_2/model.safetensors', 'tokenizer_2/vocab.json', 'tokenizer_2/merges.txt'];
  const listing = (paths: string[]) => paths.map((path) => ({ path, size: 1 }));
  assert.equal(wantedFiles(listing(sd), registry, { task: 'txt2img' }, 'sd').map((f) => f.path).sort(), [...sd].sort());
  const picked = wantedFiles(listing(xl), registry, { task: 'txt2img' }, 'xl').map((f) => f.path);
  assert.equal(picked.filter((p) => p.includes('_2/')).sort(), ['text_encoder_2/model.onnx', 'text_encoder_2/model.onnx_data', 'tokenizer_2/merges.txt', 'tokenizer_2/vocab.json']);
  const base = findEntry(registry, 'sdxl-base')!;
  assert.equal([base.family, base.resolution, base.revision], ['sdxl', [1024, 1024], 'main']);
  assert.is(approxDownloadBytes(registry, base, { task: 'txt2img' }), 492000000 + 1600000 + 2780000000 + 1600000 + 10300000000 + 198000000 + 1000);
  const turbo = findEntry(registry, 'sdxl-turbo')!;
  assert.equal(turbo.recommended, { sampler: 'euler_a', schedule: 'normal', steps: 1, cfg: 0 });
  assert.match(problemsOf(variant((r) => (r.optionalComponents = ['Text Encoder']))), '$.optionalComponents[0]');
});

test('include globs: ONNX graphs, external weights and configs in; PyTorch weights out', () => {
  const include = loadRegistry().include.map(globToRegExp);
  const ok = (name: string) => include.some((re) => re.test(name));
  for (const name of ['model.onnx', 'model.onnx_data', 'weights.pb', 'config.json', 'merges.txt', 'model.onnx.data']) assert.ok(ok(name), name);
  for (const name of ['diffusion_pytorch_model.safetensors', 'model.safetensors', 'pytorch_model.bin', 'model.ckpt', 'x.onnx.part']) assert.not.ok(ok(name), name);
});

test('schema: each kind of bad entry is reported with its path', () => {
  const cases: [string, (raw: any) => void, string][] = [
    ['missing repo', (r) => delete r.models[0].repo, '$.models[0].repo: must be a non-empty string'],
    ['hostile repo', (r) => (r.models[0].repo = '../etc/passwd'), '$.models[0].repo: must be exactly "org/name"'],
    ['repo with a third slash', (r) => (r.models[0].repo = 'a/b/c'), '$.models[0].repo'],
    ['bad id', (r) => (r.models[1].id = 'SD 15'), '$.models[1].id'],
    ['duplicate id', (r) => (r.models[1].id = r.models[0].id), 'duplicate id'],
    ['unknown task', (r) => (r.models[0].tasks = ['txt2vid']), '$.models[0].tasks[0]: must be one of txt2img, img2img, inpaint'],
    ['bad prediction', (r) => (r.models[0].prediction = 'eps'), '$.models[0].prediction'],
    ['resolution not /8', (r) => (r.models[0].resolution = [513, 512]), 'multiple of 8'],
    ['zero steps', (r) => (r.models[0].recommended.steps = 0), '$.models[0].recommended.steps'],
    ['http licence', (r) => (r.models[0].license.url = 'http://x'), 'https://'],
    ['missing component size', (r) => delete r.models[0].componentBytes.unet, 'missing "unet"'],
    ['bad pin', (r) => (r.models[0].sha256 = { 'unet/model.onnx': 'abc' }), '64 lower-case hex'],
    ['hostile pin path', (r) => (r.models[0].sha256 = { '../x': 'a'.repeat(64) }), 'unsafe repo path'],
    ['default not a model', (r) => (r.default = 'nope'), '$.default: "nope" is not the id of any model'],
    ['typo field', (r) => (r.models[0].revison = 'main'), '$.models[0].revison: unknown field'],
    ['bad revision', (r) => (r.models[0].revision = 'a/../b'), '$.models[0].revision'],
    ['bad version', (r) => (r.version = 2), '$.version: must be 1'],
    ['bad glob', (r) => (r.include = ['../*']), '$.include[0]'],
  ];
  for (const [name, mutate, expected] of cases) {
    const message = problemsOf(variant(mutate));
    assert.ok(message.includes(expected), `${name}: ${message}`);
  }
});

test('schema: all problems are reported at once', () => {
  const message = problemsOf(variant((r) => {
    delete r.models[0].repo;
    r.models[1].family = 'sd9';
  }));
  assert.ok(message.includes('$.models[0].repo'));
  assert.ok(message.includes('$.models[1].family'));
});

test('loadRegistry reports an unreadable file', () => {
  assert.throws(() => loadRegistry('/nonexistent/models.json'), (err: Error) => err instanceof RegistryError && err.message.includes('cannot read'));
});

test.run();
