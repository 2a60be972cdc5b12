import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadImage } from '../src/image/load-image.js';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { validateRegistry } from '../src/models/registry.js';
import { assembleModel, type AssembledModel } from './helpers/assemble-model.js';
import { diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { detectorFixtures, writeDetectorWeights } from './helpers/detector-weights.js';
import { FIXTURES } from './helpers/fixtures.js';
import { registryJsonFor, startHubServer, type HubServer } from './helpers/hub-server.js';

/**
 * The registry's preprocessor networks (`"preprocessors"` in models.json: lllyasviel/Annotators' ControlNetHED.pth,
 * sk_model.pth, sk_model2.pth): `--control type=softedge` without detector= is refused with the pull command of its
 * default id until pulled; with --yes the entry's file comes from a local server in the Hub's layout (the random HED
 * of tools/make_hed_refs.py, served as .safetensors: the test has no torch writer, and the entry's file name is the
 * one thing the test registry changes), and paints what the same file given by path paints; offline again the same.
 * A network of another kind, and a picture too large for the network, are refused in one line before anything downloads.
 */
const reg = suite('registry preprocessors: detector=ID, the type\'s default');
const CONTROLNET = join(FIXTURES, 'tiny-sd-control', 'controlnet');
const PICTURE = join(detectorFixtures('hed'), 'scene-64.png');
const ID = 'annotators-hed';
const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { preprocessors: Array<Record<string, unknown> & { id: string; files: string[] }> };
const entry = real.preprocessors.find((m) => m.id === ID)!;
let server: HubServer;
let env: NodeJS.ProcessEnv;
let model: AssembledModel;
let dir: string;
let weights: string;

reg.before(async () => {
  dir = tempDir();
  model = assembleModel('tiny-sd-control');
  weights = writeDetectorWeights('hed', dir);
  server = await startHubServer();
  server.addRepo({
    id: 'test-org/annotators',
    revisions: {
      main: [
        { path: 'ControlNetHED.safetensors', data: readFileSync(weights), lfs: true },
        { path: 'sk_model.pth', data: Buffer.from('not wanted'), lfs: true },
      ],
    },
  });
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
  const path = join(dir, 'registry.json');
  writeFileSync(path, JSON.stringify({ ...registry, preprocessors: [{ ...entry, repo: 'test-org/annotators', revision: 'main', files: ['ControlNetHED.safetensors'] }] }));
  env = { DIFFUSE_HOME: join(dir, 'home'), HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
reg.after(async () => {
  await server.close();
  model.remove();
});

reg("models.json's preprocessors validate: lllyasviel/Annotators at one pinned commit, one .pth each, of the types' kinds; DWPose's two ONNX files", () => {
  const registry = validateRegistry(real);
  assert.equal(registry.preprocessors.map((p) => [p.id, p.kind, p.files]), [
    ['annotators-hed', 'hed', ['ControlNetHED.pth']],
    ['annotators-lineart', 'lineart', ['sk_model.pth']],
    ['annotators-lineart-coarse', 'lineart', ['sk_model2.pth']],
    ['annotators-pidinet', 'pidinet', ['table5_pidinet.pth']],
    ['annotators-openpose', 'openpose', ['body_pose_model.pth']],
    ['annotators-openpose-hand', 'openpose-hand', ['hand_pose_model.pth']],
    ['annotators-openpose-face', 'openpose-face', ['facenet.pth']],
    ['annotators-lineart-anime', 'lineart-anime', ['netG.pth']],
    ['annotators-mlsd', 'mlsd', ['mlsd_large_512_fp32.pth']],
    ['annotators-dwpose', 'dwpose', ['yolox_l.onnx', 'dw-ll_ucoco_384.onnx']],
  ]);
  for (const p of registry.preprocessors.filter((e) => e.kind !== 'dwpose')) assert.match(`${p.repo}@${p.revision}`, /^lllyasviel\/Annotators@[0-9a-f]{40}$/);
  // No commit of yzd-v/DWPose was checked here (models.json's notes say so): the branch.
  assert.equal(registry.preprocessors.filter((e) => e.kind === 'dwpose').map((p) => `${p.repo}@${p.revision}`), ['yzd-v/DWPose@main']);
  assert.throws(() => validateRegistry({ ...real, preprocessors: [{ ...entry, kind: 'dwpose' }] }), /yolox_l\.onnx and dw-ll_ucoco_384\.onnx/);
  assert.throws(() => validateRegistry({ ...real, preprocessors: [{ ...entry, kind: 'normalbae' }] }), /kind/);
  assert.throws(() => validateRegistry({ ...real, preprocessors: [{ ...entry, files: ['a.pth', 'b.pth'] }] }), /must be one \.pth or \.safetensors file/);
});

const run = (out: string, control: string, extra: string[] = [], options = env) =>
  diffuseAsync(['txt2img', 'a lighthouse', '--model', model.dir, '--steps', '2', '--seed', '5', '-W', '64', '-H', '64', '-o', out, '--quiet', '--control', `image=${PICTURE},model=${CONTROLNET},${control}`, ...extra], { env: options });

reg('type=softedge alone: refused with the pull command; with --yes its file only, the same picture as by path; offline again the same', async () => {
  const refused = await run(join(dir, 'refused.png'), 'type=softedge');
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /diffuse models pull annotators-hed/);

  const out = join(dir, 'pulled.png');
  const first = await run(out, 'type=softedge', ['--yes']);
  assert.is(first.status, 0, first.stderr);
  const meta = readGenerationMetadata(readFileSync(out));
  assert.ok(meta.kind === 'a1111', JSON.stringify(meta));
  assert.match(meta.parameters.extra['ControlNet 0'] ?? '', /^Module: softedge_hed, /);
  const pulled = await diffuseAsync(['models', 'pull', ID, '--quiet'], { env });
  assert.is(pulled.status, 0, pulled.stderr);
  assert.equal(listFiles(pulled.stdout.trim()), ['ControlNetHED.safetensors']);

  const byPath = join(dir, 'path.png');
  const local = await run(byPath, `type=softedge,detector=${weights}`, [], { ...env, DIFFUSE_HOME: join(dir, 'home-path') });
  assert.is(local.status, 0, local.stderr);
  assert.equal((await loadImage(byPath)).rgb.data, (await loadImage(out)).rgb.data);

  const again = join(dir, 'again.png');
  const offline = await run(again, `type=softedge-safe,detector=${ID}`, [], { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' });
  assert.is(offline.status, 0, offline.stderr);
});

reg('a network of another kind for the type: exit 2, one line, nothing downloaded', async () => {
  const before = server.requests.length;
  const r = await run(join(dir, 'kind.png'), `type=lineart,detector=${ID}`, ['--yes'], { ...env, DIFFUSE_HOME: join(dir, 'home-kind') });
  assert.is(r.status, 2, r.stderr);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--control: detector=annotators-hed is a hed network; type=lineart runs lineart \(detector=annotators-lineart\)/);
  assert.is(server.requests.length, before, 'no request reached the Hub');
  assert.not.ok(existsSync(join(dir, 'kind.png')));
});

const tooLarge: Array<[string, { width: number; height: number }, string, RegExp]> = [
  ['for the network', { width: 2112, height: 2048 }, '', /--control image: type=softedge runs its network on the picture as it is, and 2112x2048 .* is more than 4 megapixels/],
  ['at its res=', { width: 64, height: 40 }, ',res=2048', /--control image: type=softedge runs its network on the picture scaled to res=2048, 3277x2048 .* lower res=/],
];
for (const [what, size, extra, says] of tooLarge) {
  reg(`a picture too large ${what}: exit 2, one line, before anything downloads`, async () => {
    const home = join(dir, `home-large-${size.width}`);
    const picture = join(dir, `large-${size.width}.png`);
    await sharp({ create: { ...size, channels: 3, background: { r: 90, g: 120, b: 200 } } }).png().toFile(picture);
    const before = server.requests.length;
    const out = join(dir, `large-${size.width}-out.png`);
    const r = await diffuseAsync(['txt2img', 'a lighthouse', '--model', model.dir, '--steps', '2', '-W', '64', '-H', '64', '-o', out, '--quiet', '--yes',
      '--control', `image=${picture},model=${CONTROLNET},type=softedge${extra}`], { env: { ...env, DIFFUSE_HOME: home } });
    assert.is(r.status, 2, r.stderr);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, says);
    assert.is(server.requests.length, before, 'no request reached the Hub');
    assert.not.ok(existsSync(join(home, 'models')));
    assert.not.ok(existsSync(out));
  });
}

reg.run();
