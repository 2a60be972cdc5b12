import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diffuse, tempDir } from './helpers/cli.js';

/**
 * `diffuse doctor` opens a graph on every provider, each probe in its own process: the CPU works
 * here, the others say why not, and nothing the GPU runtimes print (Dawn's Vulkan loader, CUDA's
 * loader) reaches doctor's own output.
 */
test('doctor --json: every provider probed, the CPU works, int8 support said, stderr quiet', () => {
  const r = diffuse(['doctor', '--json']);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr.trim(), '', 'no native runtime noise on stderr');
  const report = JSON.parse(r.stdout) as { providers: { provider: string; works: boolean; detail: string }[]; int8: { note: string } };
  assert.equal(report.providers.map((p) => p.provider), ['cpu', 'cuda', 'webgpu', 'dml', 'coreml']);
  assert.ok(report.providers.find((p) => p.provider === 'cpu')?.works);
  for (const p of report.providers) assert.ok(p.detail.length > 0, `${p.provider} says why`);
  assert.ok(report.int8.note.length > 0);
});

test('doctor says whether the safety checker runs here: off by default, on where a config file turns it on', () => {
  const dir = tempDir();
  assert.match(diffuse(['doctor'], { cwd: dir }).stdout, /safety checker: off/);
  writeFileSync(join(dir, '.diffuserc.json'), JSON.stringify({ safetyChecker: true, safetyAction: 'blur' }));
  const r = diffuse(['doctor'], { cwd: dir });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /safety checker: on \(.*\.diffuserc\.json\): every image is checked, a flagged one blurred/);
});

test.run();
