import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { ROOT, TINY_SD, diffuse, tempDir } from './helpers/cli.js';

test('diffuse config shows each value and where it came from', () => {
  const dir = tempDir();
  writeFileSync(join(dir, '.diffuserc.json'), JSON.stringify({ steps: 25, sampler: 'DPM++ 2M Karras' }));
  const r = diffuse(['config', '--json'], { cwd: dir });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { configFile: string; settings: { key: string; value: unknown; source: string }[] };
  assert.is(out.configFile, join(dir, '.diffuserc.json'));
  const get = (key: string) => out.settings.find((s) => s.key === key)!;
  assert.equal([get('steps').value, get('steps').source], [25, 'config']);
  assert.equal([get('cfgScale').value, get('cfgScale').source], [7, 'default']);
  assert.not.ok(out.settings.some((s) => s.key === 'seed'), 'per-image settings are not configurable');
});

test('a config file sets defaults; flags override it', () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', diffuse: { model: TINY_SD, steps: 2, output: 'renders' } }));
  const fromConfig = diffuse(['txt2img', 'a cat', '--seed', '1', '--quiet'], { cwd: dir });
  assert.is(fromConfig.status, 0, fromConfig.stderr);
  const file = fromConfig.stdout.trim();
  assert.ok(file.startsWith(join(dir, 'renders')), file);
  const meta = readGenerationMetadata(readFileSync(file));
  assert.ok(meta.kind === 'a1111' && meta.parameters.steps === 2);
  const flagged = diffuse(['txt2img', 'a cat', '--seed', '1', '--steps', '3', '--quiet', '-o', join(dir, 'f.png')], { cwd: dir });
  assert.is(flagged.status, 0, flagged.stderr);
  const meta2 = readGenerationMetadata(readFileSync(join(dir, 'f.png')));
  assert.ok(meta2.kind === 'a1111' && meta2.parameters.steps === 3);
});

test('a bad config file: one line, exit 2', () => {
  const dir = tempDir();
  for (const [config, pattern] of [[{ stepz: 3 }, /unknown setting 'stepz'/], [{ seed: 3 }, /'seed' cannot be set in a config file/], [{ steps: 0 }, /steps/]] as const) {
    writeFileSync(join(dir, '.diffuserc.json'), JSON.stringify(config));
    const r = diffuse(['config'], { cwd: dir });
    assert.is(r.status, 2, r.stderr);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
});

test('output piped into a reader that stops early (| head) ends quietly', async () => {
  const child = spawn(process.execPath, [join(ROOT, 'bin/diffuse.js'), 'config'], { cwd: tempDir(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.is(code, 0);
  assert.not.match(stderr, /EPIPE|at /);
});

test.run();
