import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TINY_SD } from '../helpers/cli.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { registryJsonFor, type HubServer } from '../helpers/hub-server.js';
import { LORA_FIXTURES } from '../helpers/lora-fixtures.js';
import type { HostileCase } from './harness.js';
import { editedHeader } from './inputs.js';

/**
 * Registry LoRAs (`<lora:ID>`) and ControlNets (`--control model=<id>`) pulled from Hub answers no
 * Hub should give: a file that is not safetensors, a header claiming a 2^31 x 2^31 tensor, a 404, a
 * file that does not match its SHA-256 pin, a redirect loop. Each is one line and the right exit
 * code; the cache keeps no partial or temporary file, and no file that failed its pin.
 */
export function registryCases(root: string, hub: HubServer, rawEndpoint: string, picture: string): HostileCase[] {
  const dir = join(root, 'registry');
  mkdirSync(dir, { recursive: true });
  const FILE = 'pytorch_lora_weights.safetensors';
  const lora = readFileSync(join(LORA_FIXTURES, 'tiny_kohya.safetensors'));
  const absurd = editedHeader(lora, (header) => void (header[Object.keys(header).find((k) => k !== '__metadata__')!]!.shape = [2 ** 31, 2 ** 31]));
  const files = (repo: string, data: Buffer) => hub.addRepo({ id: repo, revisions: { main: [{ path: FILE, data, lfs: true }] } });
  files('hostile-lora/text', Buffer.from('a LoRA, honestly\n'.repeat(64)));
  files('hostile-lora/absurd', absurd);
  files('hostile-lora/pinned', lora);
  const cn = join(FIXTURES, 'tiny-sd-control', 'controlnet');
  hub.addRepo({
    id: 'hostile-cn/text',
    revisions: { main: [{ path: 'config.json', data: readFileSync(join(cn, 'config.json')), lfs: false }, { path: 'diffusion_pytorch_model.safetensors', data: Buffer.from('<html>rate limited</html>'), lfs: true }] },
  });
  const loraEntry = (id: string, repo: string, more: object = {}) => ({
    id, name: id, family: 'sd1', repo, revision: 'main', files: [FILE], bytes: 1000, license: { name: 'MIT', url: 'https://example.com/licence' }, ...more,
  });
  const cnEntry = (id: string, repo: string) => ({
    id, name: id, family: 'sd1', repo, revision: 'main', files: ['config.json', 'diffusion_pytorch_model.safetensors'], bytes: 1000, license: { name: 'MIT', url: 'https://example.com/licence' },
  });
  const registry = (loras: object[], controlnets: object[] = []) => async () => {
    const base = (await registryJsonFor([{ id: 'tiny', repo: 'test-org/tiny-sd' }])) as Record<string, unknown>;
    writeFileSync(join(dir, 'registry.json'), JSON.stringify({ ...base, loras, controlnets }));
  };
  const setup = registry(
    [
      loraEntry('lora-text', 'hostile-lora/text'),
      loraEntry('lora-absurd', 'hostile-lora/absurd'),
      loraEntry('lora-404', 'hostile-lora/gone'),
      loraEntry('lora-pin', 'hostile-lora/pinned', { sha256: { [FILE]: '0'.repeat(64) } }),
      loraEntry('lora-loop', 'hostile/loop'),
    ],
    [cnEntry('cn-text', 'hostile-cn/text')],
  );
  const cases: HostileCase[] = [];
  let n = 0;
  const add = (name: string, repo: string, endpoint: string, argv: string[], status: 1 | 2, says: RegExp, keep: (folder: string) => string[] = () => []) => {
    const home = join(dir, `home-${n}`);
    const out = join(dir, `out-${n++}`);
    mkdirSync(out, { recursive: true });
    mkdirSync(home, { recursive: true });
    cases.push({
      group: 'registry',
      name,
      argv: [...argv, '--model', TINY_SD, '--steps', '1', '-q', '--seed', '1', '--yes', '-o', join(out, 'x.png')],
      env: { DIFFUSE_HOME: home, HF_ENDPOINT: endpoint, HF_TOKEN: '', DIFFUSE_REGISTRY: join(dir, 'registry.json') },
      status,
      stderr: says,
      watch: [out, home],
      keep: keep(`models/${repo.replace('/', '--')}@main`),
      setup,
    });
  };
  // A whole download that is no LoRA stays pulled (it is what the repo's revision holds, checked against the Hub's
  // SHA-256: `models rm` removes it); merging refuses it. Nothing partial or temporary stays.
  const pulled = (folder: string) => [`${folder}/manifest.json`, `${folder}/snapshot/${FILE}`];
  const lorasIn = (id: string) => ['txt2img', `a cat <lora:${id}:1>`];
  add('<lora:ID> pulled: a text file, not safetensors', 'hostile-lora/text', hub.endpoint, lorasIn('lora-text'), 2, /pytorch_lora_weights\.safetensors is not a valid safetensors file: .*; it is what the registry's lora-text pulled: `diffuse models rm lora-text` deletes it/, pulled);
  add('<lora:ID> pulled: a header claiming a 2^31 x 2^31 tensor', 'hostile-lora/absurd', hub.endpoint, lorasIn('lora-absurd'), 2, /is not a valid safetensors file: tensor '.*' has an absurd shape \[2147483648, 2147483648\]; it is what the registry's lora-absurd pulled: `diffuse models rm lora-absurd` deletes it/, pulled);
  add('<lora:ID> pulled: the repo answers 404', 'hostile-lora/gone', hub.endpoint, lorasIn('lora-404'), 1, /hostile-lora\/gone.*(not found|404|does not exist)/i);
  add('<lora:ID> pulled: a file unlike its SHA-256 pin', 'hostile-lora/pinned', hub.endpoint, lorasIn('lora-pin'), 1, /lora-pin: the Hub's sha256 for pytorch_lora_weights\.safetensors \([0-9a-f]{64}\) differs from the pin in models\.json/);
  add('<lora:ID> pulled: the Hub redirects in a loop', 'hostile/loop', rawEndpoint, lorasIn('lora-loop'), 1, /more than \d+ redirects/);
  add('--control model=<id> pulled: weights that are an HTML page', 'hostile-cn/text', hub.endpoint, ['txt2img', 'a cat', '--control', `type=none,image=${picture},model=cn-text`], 2, /diffusion_pytorch_model\.safetensors is not a valid safetensors file: .*; it is what the registry's cn-text pulled: `diffuse models rm cn-text` deletes it/, (folder) => [`${folder}/manifest.json`, `${folder}/snapshot/config.json`, `${folder}/snapshot/diffusion_pytorch_model.safetensors`, 'converted/hashes.json']);
  return cases;
}
