import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';

/** txt2img --prompts-file: every prompt on one loaded model, each image as its own run would make it. */
const common = ['--model', TINY_SD, '--steps', '2', '--seed', '21', '--quiet'];

test('each line is a run with the same settings; blank lines and # comments are skipped; - reads stdin', () => {
  const dir = tempDir();
  const list = join(dir, 'prompts.txt');
  writeFileSync(list, '# assets for the landing page\na red fox\n\n  a lighthouse at dusk  \n');
  const many = diffuse(['txt2img', '--prompts-file', list, ...common, '-o', join(dir, 'many')]);
  assert.is(many.status, 0, many.stderr);
  const made = readdirSync(join(dir, 'many')).sort();
  assert.equal(made, ['21-a_lighthouse_at_dusk.png', '21-a_red_fox.png']);
  for (const [prompt, file] of [['a red fox', '21-a_red_fox.png'], ['a lighthouse at dusk', '21-a_lighthouse_at_dusk.png']]) {
    const one = diffuse(['txt2img', prompt!, ...common, '-o', join(dir, 'one', file!)]);
    assert.is(one.status, 0, one.stderr);
    assert.ok(readFileSync(join(dir, 'many', file!)).equals(readFileSync(join(dir, 'one', file!))), file);
  }
  const piped = diffuse(['txt2img', '--prompts-file', '-', ...common, '-o', join(dir, 'piped')], { input: 'a red fox\n' });
  assert.is(piped.status, 0, piped.stderr);
  assert.ok(readFileSync(join(dir, 'piped', '21-a_red_fox.png')).equals(readFileSync(join(dir, 'one', '21-a_red_fox.png'))));
});

test('a prompt with --prompts-file, an empty or missing file: exit 2, one line, nothing written', () => {
  const dir = tempDir();
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '# nothing yet\n\n');
  for (const [args, pattern] of [
    [['a fox', '--prompts-file', empty], /no prompt argument/],
    [['--prompts-file', empty], /has no prompts/],
    [['--prompts-file', join(dir, 'missing.txt')], /no such file/],
  ] as const) {
    const r = diffuse(['txt2img', ...args, ...common, '-o', join(dir, 'out')]);
    assert.is(r.status, 2, r.stderr);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.equal(readdirSync(dir).sort(), ['empty.txt']);
});

test('JSON lines: each line\'s options override the flags for that line, as its own run would make it', () => {
  const dir = tempDir();
  const list = join(dir, 'prompts.jsonl');
  writeFileSync(list, ['# per-line options', '{"prompt": "a red fox", "seed": 5, "steps": 3}', '', '{"prompt": "a lighthouse", "cfgScale": 4, "sampler": "euler"}'].join('\n'));
  const many = diffuse(['txt2img', '--prompts-file', list, ...common, '-o', join(dir, 'many/{prompt}.png')]);
  assert.is(many.status, 0, many.stderr);
  assert.equal(readdirSync(join(dir, 'many')).sort(), ['a_lighthouse.png', 'a_red_fox.png']);
  const one = (prompt: string, extra: string[], name: string) => {
    const r = diffuse(['txt2img', prompt, ...common, ...extra, '-o', join(dir, name)]);
    assert.is(r.status, 0, r.stderr);
    return readFileSync(join(dir, name));
  };
  assert.ok(one('a red fox', ['--seed', '5', '--steps', '3'], 'fox.png').equals(readFileSync(join(dir, 'many', 'a_red_fox.png'))));
  assert.ok(one('a lighthouse', ['--cfg-scale', '4', '--sampler', 'euler'], 'light.png').equals(readFileSync(join(dir, 'many', 'a_lighthouse.png'))));
});

test('JSON lines: an unknown option, a bad value or a broken line is named with its line: exit 2, nothing written', () => {
  const dir = tempDir();
  for (const [line, pattern] of [
    ['{"prompt": "x", "cfg-scale": 4}', /line 2: unknown option 'cfg-scale' \(did you mean 'cfgScale'\?\)/],
    ['{"prompt": "x", "steps": 0}', /line 2: steps must be a whole number/],
    ['{"prompt": "x", "mask": "m.png"}', /line 2: 'mask' is not an option of txt2img/],
    ['{"prompt": "x",', /line 2: not valid JSON/],
    ['{"steps": 3}', /line 2: "prompt" must be a string/],
  ] as const) {
    const list = join(dir, 'p.jsonl');
    writeFileSync(list, `{"prompt": "fine"}\n${line}\n`);
    const r = diffuse(['txt2img', '--prompts-file', list, ...common, '-o', join(dir, 'out')]);
    assert.is(r.status, 2, r.stderr);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.equal(readdirSync(dir).sort(), ['p.jsonl']);
});

test.run();
