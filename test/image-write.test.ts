import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OutputExistsError, OutputNotWritableError } from '../src/image/errors.js';
import { suffixedPath, writeFileAtomic } from '../src/image/write.js';

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'diffuse-write-'));
});
test.after.each(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const read = (p: string): string => readFileSync(p, 'utf8');
const noTempFiles = (d: string): boolean => readdirSync(d).every((f) => !f.endsWith('.tmp'));

test('writes, creates missing folders, leaves no temp file', async () => {
  const target = join(dir, 'a', 'b', 'x.png');
  assert.is(await writeFileAtomic(target, bytes('one')), target);
  assert.is(read(target), 'one');
  assert.ok(noTempFiles(join(dir, 'a', 'b')));
});

test("existing file: 'error' refuses and keeps it, 'overwrite' replaces, 'suffix' picks -1, -2", async () => {
  const target = join(dir, 'x.png');
  writeFileSync(target, 'original');
  try {
    await writeFileAtomic(target, bytes('new'));
    assert.unreachable('should refuse');
  } catch (err) {
    assert.instance(err, OutputExistsError);
    assert.is((err as OutputExistsError).path, target);
    assert.is((err as OutputExistsError).exitCode, 1);
  }
  assert.is(read(target), 'original');
  assert.is(await writeFileAtomic(target, bytes('s1'), { ifExists: 'suffix' }), join(dir, 'x-1.png'));
  assert.is(await writeFileAtomic(target, bytes('s2'), { ifExists: 'suffix' }), join(dir, 'x-2.png'));
  assert.is(read(join(dir, 'x-2.png')), 's2');
  assert.is(await writeFileAtomic(target, bytes('replaced'), { ifExists: 'overwrite' }), target);
  assert.is(read(target), 'replaced');
  assert.ok(noTempFiles(dir));
  assert.is(suffixedPath('/o/cat.v2.png', 3), '/o/cat.v2-3.png');
});

test('racing writers: exactly one wins with error, all land distinctly with suffix', async () => {
  const target = join(dir, 'race.png');
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => writeFileAtomic(target, bytes(`w${i}`))));
  const winners = results.filter((r) => r.status === 'fulfilled');
  assert.is(winners.length, 1);
  for (const r of results) if (r.status === 'rejected') assert.instance(r.reason, OutputExistsError);
  const winner = results.findIndex((r) => r.status === 'fulfilled');
  assert.is(read(target), `w${winner}`);

  const paths = await Promise.all(Array.from({ length: 8 }, (_, i) => writeFileAtomic(join(dir, 's.png'), bytes(`s${i}`), { ifExists: 'suffix' })));
  assert.is(new Set(paths).size, 8);
  assert.equal(paths.map(read).sort(), Array.from({ length: 8 }, (_, i) => `s${i}`).sort());
  assert.ok(noTempFiles(dir));
});

test('unwritable targets are OutputNotWritableError and clean up', async () => {
  writeFileSync(join(dir, 'file'), 'x');
  mkdirSync(join(dir, 'folder.png'));
  const cases: [string, 'error' | 'overwrite'][] = [
    [join(dir, 'file', 'under-a-file.png'), 'error'], // a path component is a file
    [join(dir, 'folder.png'), 'overwrite'], // a directory in the way
  ];
  for (const [target, ifExists] of cases) {
    try {
      await writeFileAtomic(target, bytes('x'), { ifExists });
      assert.unreachable(target);
    } catch (err) {
      assert.instance(err, OutputNotWritableError, target);
      assert.is((err as OutputNotWritableError).path, target);
    }
  }
  try {
    await writeFileAtomic(join(dir, 'missing', 'x.png'), bytes('x'), { createDirs: false });
    assert.unreachable('missing folder');
  } catch (err) {
    assert.instance(err, OutputNotWritableError);
  }
  assert.ok(noTempFiles(dir));
});

test.run();
