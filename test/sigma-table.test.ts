import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';

/**
 * The sigma table (diffusers' float32 betas, A1111's and ComfyUI's float64 ones) follows the names
 * a run is given; the image records it where its written names would imply another, so --from
 * makes the same file.
 */
const base = ['--model', TINY_SD, '--steps', '3', '--seed', '9', '--quiet'];
const infotext = (file: string): Record<string, string> => {
  const meta = readGenerationMetadata(readFileSync(file));
  return meta.kind === 'a1111' ? { Sampler: meta.parameters.sampler ?? '', 'Schedule type': meta.parameters.scheduleType ?? '', ...meta.parameters.extra } : {};
};

test('our ids with karras: diffusers\' table, recorded because "DPM++ 2M" / "Karras" would read as A1111\'s; --from restores it', () => {
  const dir = tempDir();
  const first = join(dir, 'ours.png');
  assert.is(diffuse(['txt2img', 'a fox', ...base, '--sampler', 'dpmpp_2m', '--schedule', 'karras', '-o', first]).status, 0);
  assert.equal([infotext(first).Sampler, infotext(first)['Schedule type'], infotext(first)['Sigma table']], ['DPM++ 2M', 'Karras', 'diffusers']);
  const again = join(dir, 'again.png');
  const r = diffuse(['txt2img', '--from', first, '--model', TINY_SD, '--quiet', '-o', again]);
  assert.is(r.status, 0, r.stderr);
  assert.ok(readFileSync(again).equals(readFileSync(first)), 'the same file');
});

test("A1111's names: A1111's table, nothing extra recorded; --sigma-table overrides; a bad table is a usage error", () => {
  const dir = tempDir();
  const a1111 = join(dir, 'a1111.png');
  const ours = join(dir, 'ours.png');
  assert.is(diffuse(['txt2img', 'a fox', ...base, '--sampler', 'DPM++ 2M Karras', '-o', a1111]).status, 0);
  assert.is(diffuse(['txt2img', 'a fox', ...base, '--sampler', 'dpmpp_2m', '--schedule', 'karras', '-o', ours]).status, 0);
  assert.is(infotext(a1111)['Sigma table'], undefined);
  const forced = join(dir, 'forced.png');
  assert.is(diffuse(['txt2img', 'a fox', ...base, '--sampler', 'dpmpp_2m', '--schedule', 'karras', '--sigma-table', 'a1111', '-o', forced]).status, 0);
  assert.is(infotext(forced)['Sigma table'], undefined, 'A1111 table with A1111-readable names: nothing to record');
  const bad = diffuse(['txt2img', 'a fox', ...base, '--sigma-table', 'numpy', '-o', join(dir, 'bad.png')]);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--sigma-table/);
});

test.run();
