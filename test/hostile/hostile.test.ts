import { chmodSync, existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { TINY_SD, tempDir } from '../helpers/cli.js';
import { repoFromFolder, startHubServer, type HubServer } from '../helpers/hub-server.js';
import { corpus } from './corpus.js';
import { emptyTally, filesIn, formatTally, judge, runInProcess, runSpawned, type HostileCase, type Tally } from './harness.js';
import { makeHostileFiles } from './inputs.js';
import { registryCases } from './registry-cases.js';

/**
 * Hostile inputs for every entry point (test/hostile/corpus.ts), each run as the CLI runs it —
 * main(argv) in this process, or a child process where the point is a native crash — and judged:
 * the exit code, one line on stderr, no stack trace, no hang, nothing left behind. The tally line
 * it prints is the figure the README quotes.
 */
const S = suite('hostile inputs');
const root = tempDir('diffuse-hostile-');
const home = tempDir('diffuse-hostile-home-');
const tally: Tally = emptyTally();
const failures: string[] = [];
let hub: HubServer | undefined;
let raw: Server | undefined;

S.after(async () => {
  await hub?.close();
  await new Promise((resolve) => (raw ? raw.close(resolve) : resolve(undefined)));
  // Folders a case made read-only must be writable again to be removed.
  for (const dir of filesIn(root).filter((f) => f.includes('/ro'))) chmodSync(join(root, dir, '..'), 0o700);
  rmSync(root, { recursive: true, force: true });
  rmSync(home, { recursive: true, force: true });
});

async function runCase(c: HostileCase): Promise<void> {
  await c.setup?.();
  const before = new Map((c.watch ?? []).map((d) => [d, filesIn(d)]));
  const options = { ...(c.cwd ? { cwd: c.cwd } : {}), env: { DIFFUSE_HOME: home, ...c.env } };
  const outcome = c.spawn ? runSpawned(c.argv, options) : await runInProcess(c.argv, options);
  const problems = judge(c, outcome, before, tally);
  if (problems.length > 0) failures.push(`[${c.group}] ${c.name}: ${problems.join('; ')}`);
}

/** Listings no Hub sends: endless, not JSON, without a file list, with impossible sizes, redirecting to themselves. */
function startRawHub(): Promise<string> {
  raw = createServer((req, res) => {
    const kind = /\/api\/models\/hostile\/([\w-]+)\//.exec(req.url ?? '')?.[1];
    res.setHeader('content-type', 'application/json');
    if (kind === 'endless') {
      res.write('{"siblings":[');
      const more = () => {
        if (res.destroyed) return;
        if (res.write(`{"rfilename":"${'x'.repeat(1000)}","size":1},`)) setImmediate(more);
        else res.once('drain', more);
      };
      more();
      return;
    }
    if (kind === 'loop') {
      res.writeHead(302, { location: req.url });
      return void res.end();
    }
    if (kind === 'html') return void res.end('<html>nope</html>');
    if (kind === 'nolist') return void res.end('{"sha":"x"}');
    if (kind === 'negative') return void res.end('{"siblings":[{"rfilename":"unet/model.onnx","size":-5}]}');
    if (kind === 'nested') return void res.end(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    res.statusCode = 404;
    res.end('{"error":"Repository not found"}');
  });
  return new Promise((resolve) => raw!.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(raw!.address() as AddressInfo).port}`)));
}

async function hubCases(): Promise<HostileCase[]> {
  hub = await startHubServer();
  const names = ['unet/../../../escape.onnx', '../escape.json', '/tmp/escape.json', 'unet\\..\\..\\escape.onnx', 'model_index.json\u001b[2J'];
  const tiny = await repoFromFolder(TINY_SD);
  // A whole model, so the names are what is wrong: each unsafe name alone, and none alongside.
  hub.addRepo({ id: 'hostile/names', revisions: { main: [...tiny, ...names.map((path) => ({ path, data: Buffer.from('{}'), lfs: false }))] } });
  hub.addRepo({ id: 'hostile/noindex', revisions: { main: names.map((path) => ({ path, data: Buffer.from('{}'), lfs: false })) } });
  hub.addRepo({ id: 'hostile/flipped', revisions: { main: tiny } });
  hub.setFault('unet/model.onnx', { corruptByte: 100, times: 1000 });
  const rawEndpoint = await startRawHub();
  const pull = (repo: string, endpoint: string, says: RegExp, keep: string[] = []): HostileCase => ({
    group: 'hub',
    name: `models pull hf:${repo}`,
    argv: ['models', 'pull', `hf:${repo}`, '-q'],
    env: { HF_ENDPOINT: endpoint },
    status: 1,
    stderr: says,
    watch: [home],
    keep,
  });
  // The files that passed their checks stay for the next pull to resume from; the corrupt one is gone.
  // A sibling still in flight when the corrupt file fails is aborted and keeps its .part for that
  // resume (downloadFiles): whether one is in flight depends on timing (seen on a loaded machine).
  const verified = ['manifest.json', ...tiny.map((f) => `snapshot/${f.path}`).filter((p) => p !== 'snapshot/unet/model.onnx')].map((p) => `models/hostile--flipped@main/${p}`);
  const resumable = verified.filter((p) => p.includes('/snapshot/')).map((p) => `${p}.part`);
  return [
    ...registryCases(root, hub, rawEndpoint, join(TINY_SD, '..', 'hed', 'scene-64.png')),
    pull('hostile/names', hub.endpoint, /unsafe|refus|outside|file name/i),
    pull('hostile/noindex', hub.endpoint, /hostile\/noindex@main has no model_index\.json: not a diffusers model repo/),
    pull('hostile/flipped', hub.endpoint, /corrupt.*deleted/i, [...verified, ...resumable]),
    pull('hostile/endless', rawEndpoint, /the Hub's answer passes 16 MB; that is no listing/),
    pull('hostile/html', rawEndpoint, /the Hub's answer is not JSON/),
    pull('hostile/nolist', rawEndpoint, /the Hub's answer has no file list/),
    pull('hostile/negative', rawEndpoint, /has no valid size/),
    pull('hostile/nested', rawEndpoint, /has no file list|not JSON/),
    pull('hostile/missing', rawEndpoint, /not found|404|does not exist/i),
  ];
}

S('every case: the exit code and one line it should give, no crash, hang, trace or partial file', async () => {
  const files = await makeHostileFiles(join(root, 'files'));
  const cases = [...corpus(root, files), ...(await hubCases())];
  for (const c of cases) await runCase(c);
  process.stdout.write(`\n${formatTally(tally)}\n`);
  assert.ok(tally.cases >= 250, `only ${tally.cases} cases`);
  assert.equal(failures, []);
  assert.not.ok(existsSync(join(root, 'config', 'RAN')), 'a config found by searching was run');
  const groups = new Set(cases.map((c) => c.group));
  for (const g of ['flags', 'prompts', 'files', 'png', 'config', 'embeddings', 'models', 'outputs', 'convert', 'watermark', 'hub', 'softedge', 'registry', 'controlnet']) assert.ok(groups.has(g), g);
});

S.run();
