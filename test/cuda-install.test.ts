import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cudaInstallCommand } from '../src/onnx/cuda-install.js';
import { ROOT, diffuse } from './helpers/cli.js';

/**
 * The CUDA install path up to the download, which this network cannot reach: the command diffuse
 * prints runs onnxruntime-node's own install script with the flag it reads, and the script then
 * goes for NuGet. A local proxy stands in for the network (global-agent, which the script loads,
 * routes its HTTPS through GLOBAL_AGENT_HTTP_PROXY), records where the script wanted to go and
 * refuses, so nothing is downloaded here or on a machine with a network.
 */

function refusingProxy(): Promise<{ server: Server; url: string; connects: string[] }> {
  const connects: string[] = [];
  const server = createServer((_req, res) => {
    res.writeHead(403);
    res.end();
  });
  server.on('connect', (req, socket) => {
    connects.push(req.url ?? '');
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connects })));
}

/** Runs `VAR=value node "script"` as printed, without a shell. */
function runPrinted(command: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; output: string }> {
  const m = /^(\w+)=(\S+) node (".*")$/.exec(command);
  if (!m) throw new Error(`unexpected command shape: ${command}`);
  const child = spawn(process.execPath, [JSON.parse(m[3]!) as string], { env: { ...process.env, ...env, [m[1]!]: m[2]! }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise((resolve) => child.on('exit', (status) => resolve({ status, output })));
}

test('the printed CUDA command makes onnxruntime-node\'s install script fetch the CUDA provider from NuGet, also inside npm\'s environment', async () => {
  const proxy = await refusingProxy();
  try {
    // npm_config_local_prefix and npm_package_json make the script think it is a local install: the flag must override that.
    const run = await runPrinted(cudaInstallCommand(), { GLOBAL_AGENT_HTTP_PROXY: proxy.url, npm_config_local_prefix: ROOT.replace(/\/$/, ''), npm_package_json: `${ROOT}package.json` });
    if (process.platform === 'linux' && process.arch === 'x64') {
      assert.equal(proxy.connects, ['api.nuget.org:443'], run.output);
      assert.is.not(run.status, 0, 'the refused download fails the script');
    }
  } finally {
    proxy.server.close();
  }
});

test('skip leaves the script without any connection', async () => {
  const proxy = await refusingProxy();
  try {
    const run = await runPrinted(cudaInstallCommand().replace('=true', '=skip'), { GLOBAL_AGENT_HTTP_PROXY: proxy.url });
    assert.is(run.status, 0, run.output);
    assert.equal(proxy.connects, []);
  } finally {
    proxy.server.close();
  }
});

test('doctor prints that command for CUDA when CUDA does not load', () => {
  const r = diffuse(['doctor', '--json']);
  assert.is(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { providers: { provider: string; works: boolean; advice: string }[] };
  const cuda = report.providers.find((p) => p.provider === 'cuda')!;
  if (!cuda.works) assert.ok(cuda.advice.includes(cudaInstallCommand()), cuda.advice);
});

test.run();
