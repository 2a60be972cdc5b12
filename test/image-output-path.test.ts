import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DiffuseError } from '../src/errors.js';
import { NameTemplateError, UnsupportedOutputFormatError } from '../src/image/errors.js';
import { type OutputNameVars, DEFAULT_NAME_TEMPLATE, planOutputs, renderFileName, resolveOutputTarget } from '../src/image/output-path.js';

const vars = (over: Partial<OutputNameVars> = {}): OutputNameVars => ({
  seed: 42,
  index: 0,
  batch: 0,
  prompt: 'a cat, on a mat',
  model: 'sd15',
  sampler: 'Euler a',
  steps: 20,
  cfg: 7.5,
  width: 512,
  height: 768,
  date: new Date(2024, 5, 11, 9, 5, 3),
  ...over,
});

test('default template and every placeholder', () => {
  assert.is(DEFAULT_NAME_TEMPLATE, '{seed}-{prompt}');
  assert.is(renderFileName(DEFAULT_NAME_TEMPLATE, vars()), '42-a_cat,_on_a_mat.png');
  assert.is(
    renderFileName('{date}_{time}_{index}_{batch}_{model}_{sampler}_{steps}_{cfg}_{width}x{height}', vars({ index: 3, batch: 1 })),
    '2024-06-11_090503_3_1_sd15_Euler_a_20_7.5_512x768.png',
  );
  assert.is(renderFileName('{date}/{seed}.png', vars()), `2024-06-11${sep}42.png`);
  // {name:N} keeps N characters of any placeholder; the template's image extension is kept.
  assert.is(renderFileName('{prompt:5}-{model:2}.webp', vars()), 'a_cat-sd.webp');
  assert.is(renderFileName('{seed}.JPG', vars()), '42.JPG');
  assert.is(renderFileName('{seed}.txt', vars()), '42.txt.png');
});

test('values are made file-name safe; names are trimmed, bounded and never Windows-reserved', () => {
  const name = (template: string, prompt: string): string => renderFileName(template, vars({ prompt }));
  assert.is(name('{prompt}', 'x/../..\\y: <z>|"q"?*#\n\ttab\u0001'), 'x_.._.._y___z___q_____tab.png');
  assert.is(name(DEFAULT_NAME_TEMPLATE, '..'), '42.png'); // edge dots/dashes trimmed
  assert.is(name(DEFAULT_NAME_TEMPLATE, ''), '42.png');
  assert.is(name('{prompt}', 'con'), '_con.png');
  assert.is(name('{prompt}', 'LPT1.txt'), '_LPT1.txt.png');
  const long = name('{prompt}{prompt}', '日'.repeat(100)); // 64 characters per {prompt}, 200 bytes per name
  assert.is(long, `${'日'.repeat(66)}.png`);
  assert.is(name('{prompt}', '🐱'.repeat(70)), `${'🐱'.repeat(50)}.png`); // no split surrogate pairs
});

test('template mistakes are NameTemplateError', () => {
  for (const template of ['{foo}', '{toString}', '{seed', 'seed}', '../{seed}', '{seed}/../x', '/abs/{seed}', '{prompt}', '{prompt:x}', '{prompt:0}']) {
    assert.throws(() => renderFileName(template, vars({ prompt: '' })), (e: unknown) => e instanceof NameTemplateError && e.exitCode === 2, template);
  }
});

test('-o: file, folder, or unsupported format', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'diffuse-out-'));
  try {
    mkdirSync(join(cwd, 'existing.png'));
    assert.equal(await resolveOutputTarget(undefined, cwd), { kind: 'folder', dir: cwd });
    assert.equal(await resolveOutputTarget('out.png', cwd), { kind: 'file', path: join(cwd, 'out.png') });
    assert.equal(await resolveOutputTarget('OUT.PNG', cwd), { kind: 'file', path: join(cwd, 'OUT.PNG') });
    assert.equal(await resolveOutputTarget('results', cwd), { kind: 'folder', dir: join(cwd, 'results') });
    assert.equal(await resolveOutputTarget('new.png/', cwd), { kind: 'folder', dir: join(cwd, 'new.png') });
    assert.equal(await resolveOutputTarget('existing.png', cwd), { kind: 'folder', dir: join(cwd, 'existing.png') });
    assert.equal(await resolveOutputTarget('/abs/x.png', cwd), { kind: 'file', path: '/abs/x.png' });
    assert.equal(await resolveOutputTarget('out.jpg', cwd), { kind: 'file', path: join(cwd, 'out.jpg') });
    assert.equal(await resolveOutputTarget('OUT.WEBP', cwd), { kind: 'file', path: join(cwd, 'OUT.WEBP') });
    assert.equal(await resolveOutputTarget('a/b/{seed}-{prompt:40}.avif', cwd), { kind: 'folder', dir: join(cwd, 'a/b'), template: '{seed}-{prompt:40}.avif' });
    assert.equal(await resolveOutputTarget('{model}/{seed}', cwd), { kind: 'folder', dir: cwd, template: '{model}/{seed}' });
    for (const bad of ['out.gif', 'out.TIFF', 'x/{seed}.bmp', 'x/{nope}.png']) {
      try {
        await resolveOutputTarget(bad, cwd);
        assert.unreachable(bad);
      } catch (err) {
        assert.ok(err instanceof UnsupportedOutputFormatError || err instanceof NameTemplateError, bad);
        assert.instance(err, DiffuseError);
        assert.is((err as DiffuseError).exitCode, 2); // a usage error
      }
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('plans: numbered files for a batch, template names in a folder, no collisions within a run', () => {
  const file = { kind: 'file', path: '/o/cat.png' } as const;
  assert.equal(planOutputs(file, [vars()]), [{ path: '/o/cat.png', ifExists: 'error' }]);
  assert.equal(
    planOutputs(file, [vars(), vars(), vars()], { overwrite: true }).map((p) => [p.path, p.ifExists]),
    [['/o/cat-1.png', 'overwrite'], ['/o/cat-2.png', 'overwrite'], ['/o/cat-3.png', 'overwrite']],
  );
  const twelve = planOutputs(file, Array.from({ length: 12 }, () => vars())).map((p) => p.path);
  assert.equal([twelve[0], twelve[11]], ['/o/cat-01.png', '/o/cat-12.png']);

  const folder = { kind: 'folder', dir: '/o' } as const;
  const images = [vars({ seed: 1, index: 0 }), vars({ seed: 2, index: 1 })];
  assert.equal(planOutputs(folder, images), [
    { path: join('/o', '1-a_cat,_on_a_mat.png'), ifExists: 'suffix' },
    { path: join('/o', '2-a_cat,_on_a_mat.png'), ifExists: 'suffix' },
  ]);
  // Repeats: resolved on disk by the 'suffix' policy, or here when overwriting.
  assert.equal(planOutputs(folder, [vars(), vars()], { template: '{model}' }).map((p) => p.path), [join('/o', 'sd15.png'), join('/o', 'sd15.png')]);
  assert.equal(
    planOutputs(folder, [vars(), vars(), vars()], { template: '{model}', overwrite: true }).map((p) => [p.path, p.ifExists]),
    [[join('/o', 'sd15.png'), 'overwrite'], [join('/o', 'sd15-1.png'), 'overwrite'], [join('/o', 'sd15-2.png'), 'overwrite']],
  );
  const templated = { kind: 'folder', dir: '/o', template: '{model}.webp' } as const;
  assert.equal(planOutputs(templated, [vars(), vars()], { overwrite: true }).map((p) => p.path), [join('/o', 'sd15.webp'), join('/o', 'sd15-1.webp')]);
});

test.run();
