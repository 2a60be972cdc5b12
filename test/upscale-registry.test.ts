import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { pngTextRecord, readPngText } from '../src/image/png-text.js';
import { validateRegistry } from '../src/models/registry.js';
import { diffuseAsync, listFiles, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { registryJsonFor, startHubServer, type HubServer } from './helpers/hub-server.js';

/**
 * Registry upscalers (`"upscalers"` in models.json): `diffuse upscale --model realesrgan-x4plus` is refused
 * with the pull command until pulled, `models pull` fetches exactly the entry's file from a local server in the
 * Hub's layout (the tiny RRDBNet standing in for the real one), and the image records A1111's name for it.
 */
const reg = suite('registry upscalers: models pull, upscale --model ID');
let server: HubServer;
let env: NodeJS.ProcessEnv;
const real = JSON.parse(readFileSync(new URL('../../models.json', import.meta.url), 'utf8')) as { upscalers: Array<Record<string, unknown>> };

reg.before(async () => {
  server = await startHubServer();
  server.addRepo({
    id: 'test-org/upscalers',
    revisions: {
      main: [
        { path: 'RealESRGAN_x4.onnx', data: readFileSync(join(FIXTURES, 'upscale', 'rrdb-x4.onnx')), lfs: true },
        { path: '4x-UltraSharp.onnx', data: Buffer.from('not wanted'), lfs: true },
      ],
    },
  });
  const home = tempDir('diffuse-home-');
  const registry = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
  const x4 = { ...real.upscalers.find((u) => u.id === 'realesrgan-x4plus')!, repo: 'test-org/upscalers', revision: 'main' };
  const path = join(home, 'registry.json');
  writeFileSync(path, JSON.stringify({ ...registry, upscalers: [x4] }));
  env = { DIFFUSE_HOME: home, HF_ENDPOINT: server.endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: path };
});
reg.after(async () => {
  await server.close();
});

reg("models.json's upscalers validate: one .onnx each, an architecture and a scale", () => {
  const registry = validateRegistry(real);
  assert.equal(
    registry.upscalers.map((u) => [u.id, u.kind, u.scale, u.files.length]),
    [
      ['realesrgan-x4plus', 'rrdbnet', 4, 1],
      ['realesrgan-x2plus', 'rrdbnet', 2, 1],
      ['realesr-general-x4v3', 'srvgg', 4, 1],
      ['realesrgan-x4plus-anime-6b', 'rrdbnet', 4, 1],
    ],
  );
  assert.throws(() => validateRegistry({ ...real, upscalers: [{ ...real.upscalers[0], files: ['a.onnx', 'b.onnx'] }] }), /must be one \.onnx file/);
  assert.throws(() => validateRegistry({ ...real, upscalers: [{ ...real.upscalers[0], kind: 'swinir' }] }), /kind/);
});

reg('not pulled: refused with the pull command; pulled: exactly its file, and the PNG names it as A1111 does', async () => {
  const out = tempDir();
  const input = join(FIXTURES, 'upscale', 'images', 'small.png');
  const refused = await diffuseAsync(['upscale', input, '--model', 'realesrgan-x4plus', '-q', '-o', join(out, 'a.png')], { env });
  assert.is(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /diffuse models pull realesrgan-x4plus/);

  const pull = await diffuseAsync(['models', 'pull', 'realesrgan-x4plus', '--quiet'], { env });
  assert.is(pull.status, 0, pull.stderr);
  assert.equal(listFiles(pull.stdout.trim()), ['RealESRGAN_x4.onnx']);

  const offline = { ...env, HF_ENDPOINT: 'http://127.0.0.1:9' };
  const run = await diffuseAsync(['upscale', input, '-q', '--offline', '-o', join(out, 'b.png')], { env: offline });
  assert.is(run.status, 0, run.stderr);
  assert.is(pngTextRecord(readPngText(readFileSync(join(out, 'b.png')))).postprocessing, 'Postprocess upscale by: 4, Postprocess upscaler: R-ESRGAN 4x+');

  const list = JSON.parse((await diffuseAsync(['models', 'list', '--json'], { env: offline })).stdout) as { upscalers: Array<{ id: string; installed: unknown }> };
  assert.ok(list.upscalers.find((u) => u.id === 'realesrgan-x4plus')?.installed, 'listed as installed');
});

reg.run();
