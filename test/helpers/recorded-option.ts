import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../../src/image/metadata.js';
import { TINY_SD, diffuse, tempDir } from './cli.js';

/**
 * A generation option on the command line, end to end on tiny-sd: `flag value` writes A1111's
 * `key: value` into the image, `--from` that image re-runs it to the same bytes, `flag off`
 * writes exactly the plain image, and `flag value` does not.
 */
export function assertRecordedOption(flag: string, value: string, off: string, key: string): void {
  const dir = tempDir();
  const args = ['--model', TINY_SD, '--steps', '4', '--seed', '5', '--quiet'];
  const png = (name: string) => readFileSync(join(dir, name));
  assert.is(diffuse(['txt2img', 'a fox', ...args, flag, value, '-o', join(dir, 'a.png')]).status, 0);
  const meta = readGenerationMetadata(png('a.png'));
  assert.ok(meta.kind === 'a1111' && meta.parameters.extra[key] === value, JSON.stringify(meta));
  const again = diffuse(['txt2img', '--from', join(dir, 'a.png'), '--model', TINY_SD, '--quiet', '-o', join(dir, 'b.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.ok(png('a.png').equals(png('b.png')), '--from re-ran the same image');
  assert.is(diffuse(['txt2img', 'a fox', ...args, '-o', join(dir, 'plain.png')]).status, 0);
  assert.is(diffuse(['txt2img', 'a fox', ...args, flag, off, '-o', join(dir, 'off.png')]).status, 0);
  assert.ok(png('off.png').equals(png('plain.png')), `${flag} ${off} writes the plain image`);
  assert.not.ok(png('a.png').equals(png('plain.png')), `${flag} ${value} changes the image`);
}
