import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TINY_SD } from '../helpers/cli.js';
import { FIXTURES, readJson } from '../helpers/fixtures.js';
import { checkpointBytes, writeDiffusersFolder, type Recipe } from '../helpers/synthetic-checkpoint.js';
import { storedZip } from '../helpers/torch-zip.js';
import type { HostileCase } from './harness.js';
import { EMBEDDINGS, HOSTILE_CHECKPOINTS, bombPng, brokenBlip, brokenModel, editedHeader, patchJson, type HostileFiles } from './inputs.js';

/** The tiny RRDBNet x4 (tools/make_upscale_fixture.py). */
const UPSCALER = join(FIXTURES, 'upscale', 'rrdb-x4.onnx');

/**
 * The corpus: hostile inputs for every entry point, each with the exit code and the line diffuse
 * must answer with. `root` is a scratch folder, `f` the hostile files made in it.
 */
export function corpus(root: string, f: HostileFiles): HostileCase[] {
  const cases: HostileCase[] = [];
  let n = 0;
  /** A fresh output folder per case, watched for anything left behind. */
  const out = () => {
    const dir = join(root, 'out', String(n++));
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const add = (c: Omit<HostileCase, 'watch'> & { watch?: string[] }) => cases.push(c as HostileCase);
  const run = ['--model', TINY_SD, '--steps', '1', '-q', '--seed', '1'];

  // ---- flags: every generating option, with values that are not values ----------------------
  const numeric: Record<string, { commands: string[]; bad: string[]; says: RegExp }> = {
    '--steps': { commands: ['txt2img', 'img2img'], bad: ['0x10', '1e3', '', '0', '-1', '1001', 'abc', '2.5', 'Infinity', ' ', '0b11', '1_000'], says: /--steps must be a whole number from 1 to 1000/ },
    '--cfg-scale': { commands: ['txt2img'], bad: ['NaN', 'Infinity', '', '-1', '101', '0x7', '7,5'], says: /--cfg-scale must be a number from 0 to 100/ },
    '--seed': { commands: ['txt2img', 'inpaint'], bad: ['-1', '4294967296', '1.5', '0x10', 'seed', '1e3'], says: /--seed must be a whole number from 0 to 4294967295/ },
    '--width': { commands: ['txt2img'], bad: ['0', '12', '8200', '0x40', '-64', 'wide'], says: /--width must be/ },
    '--height': { commands: ['txt2img', 'depth2img'], bad: ['7', '8193', '1e2'], says: /--height must be/ },
    '--batch-size': { commands: ['txt2img'], bad: ['0', '65', '2.0', '0x2'], says: /--batch-size must be a whole number from 1 to 64/ },
    '--batch-count': { commands: ['txt2img'], bad: ['0', '10001', '-3'], says: /--batch-count must be a whole number from 1 to 10000/ },
    '--clip-skip': { commands: ['txt2img'], bad: ['0', '13', 'last'], says: /--clip-skip must be a whole number from 1 to 12/ },
    '--eta': { commands: ['txt2img'], bad: ['-0.1', '11', 'NaN'], says: /--eta must be a number from 0 to 10/ },
    '--token-merging': { commands: ['txt2img'], bad: ['-0.1', '0.95', 'half'], says: /--token-merging must be a number from 0 to 0.9/ },
    '--deep-cache': { commands: ['txt2img'], bad: ['0', '2.5', 'every'], says: /--deep-cache must be a whole number from 1 to 1000/ },
    '--ensd': { commands: ['txt2img'], bad: ['-1', '31337.5', '2147483648'], says: /--ensd must be a whole number/ },
    '--threads': { commands: ['txt2img'], bad: ['0', '1025', 'all'], says: /--threads must be a whole number from 1 to 1024/ },
    '--variation-strength': { commands: ['txt2img'], bad: ['2', '-0.5', '50%'], says: /--variation-strength must be a number from 0 to 1/ },
    '--cfg-rescale': { commands: ['txt2img'], bad: ['1.5', 'x'], says: /--cfg-rescale must be a number from 0 to 1/ },
    '--strength': { commands: ['img2img', 'inpaint', 'outpaint', 'depth2img'], bad: ['1.01', '-0.1', '.', ''], says: /--strength must be a number from 0 to 1/ },
    '--mask-blur': { commands: ['inpaint', 'outpaint'], bad: ['65', '-1'], says: /--mask-blur must be a whole number from 0 to 64/ },
    '--masked-padding': { commands: ['inpaint'], bad: ['1025'], says: /--masked-padding must be a whole number/ },
    '--overlap': { commands: ['outpaint'], bad: ['12', '264'], says: /--overlap must be/ },
    '--pass-size': { commands: ['outpaint'], bad: ['0', '4104'], says: /--pass-size must be/ },
  };
  const imageArgs: Record<string, string[]> = {
    txt2img: [],
    img2img: ['-i', f.valid],
    inpaint: ['-i', f.valid, '--mask', f.validMask],
    outpaint: ['-i', f.valid, '--extend', '8'],
    depth2img: ['-i', f.valid, '--depth-map', f.validMask],
  };
  for (const [flag, spec] of Object.entries(numeric)) {
    for (const [i, bad] of spec.bad.entries()) {
      const command = spec.commands[i % spec.commands.length]!;
      const o = out();
      add({ group: 'flags', name: `${command} ${flag} ${JSON.stringify(bad)}`, argv: [command, 'a cat', ...run, ...imageArgs[command]!, flag, bad, '-o', join(o, 'x.png')], status: 2, stderr: spec.says, watch: [o] });
    }
  }
  const choices: Record<string, string> = {
    '--rng': 'gpu', '--seed-mode': 'comfy', '--sde-noise': 'pink', '--sigma-table': 'sdxl', '--prompt-weighting': 'nai', '--pad-cond': 'zeros',
    '--attention': 'flash', '--quantize': 'int4', '--int8-format': 's4', '--device': 'tpu', '--resize-mode': 'stretch', '--strength-mode': 'comfy',
    '--vae-latents': 'mode', '--inpaint-area': 'crop', '--masked-content': 'random', '--fill': 'mirror',
  };
  const commandFor: Record<string, string> = { '--resize-mode': 'img2img', '--strength-mode': 'img2img', '--vae-latents': 'depth2img', '--inpaint-area': 'inpaint', '--masked-content': 'inpaint', '--fill': 'outpaint' };
  for (const [flag, bad] of Object.entries(choices)) {
    const command = commandFor[flag] ?? 'txt2img';
    const o = out();
    add({ group: 'flags', name: `${command} ${flag} ${bad}`, argv: [command, 'a cat', ...run, ...imageArgs[command]!, flag, bad, '-o', join(o, 'x.png')], status: 2, stderr: new RegExp(`${flag} must be one of`), watch: [o] });
  }
  for (const [flag, command] of [['--model', 'txt2img'], ['-o', 'txt2img'], ['--vae', 'txt2img'], ['--embeddings-dir', 'txt2img'], ['--optimized-cache', 'txt2img'], ['--init-image', 'img2img'], ['--mask', 'inpaint'], ['--depth-map', 'depth2img'], ['--config', 'txt2img']] as const) {
    const o = out();
    const argv = [command, 'a cat', ...run, ...imageArgs[command]!, '-o', join(o, 'x.png'), flag, ''];
    add({ group: 'flags', name: `${command} ${flag} ''`, argv, status: 2, stderr: /is empty/, watch: [o] });
  }
  for (const [name, sampler, says] of [['unknown sampler', 'euler_b', /--sampler: unknown sampler 'euler_b'/], ['unknown schedule', 'euler', /--schedule: unknown schedule/]] as const) {
    const o = out();
    add({ group: 'flags', name, argv: ['txt2img', 'x', ...run, '--sampler', sampler, ...(name.includes('schedule') ? ['--schedule', 'zigzag'] : []), '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
  }
  const extend: Array<[string, RegExp]> = [
    ['0', /adds nothing/], ['left=8,left=16', /left is given twice/], ['left=0,right=0', /every side is 0/], ['up=8', /cannot read 'up=8'/], ['left=7', /multiple of 8/],
    ['8,8', /cannot read/], ['left=', /--extend left must be a whole number from 0 to 4096 \(got ''\)/], ['-8', /cannot read/], ['0x10', /cannot read/], ['left=4104', /from 0 to 4096/], ['', /cannot read/],
  ];
  for (const [value, says] of extend) {
    const o = out();
    add({ group: 'flags', name: `outpaint --extend ${JSON.stringify(value)}`, argv: ['outpaint', 'sea', ...run, '-i', f.valid, '--extend', value, '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
  }
  for (const [name, argv, status, says, ...rest] of [
    ['no subcommand', [], 2, /^Usage: diffuse/, 'any'],
    ['unknown subcommand', ['paint', 'x'], 2, /unknown command 'paint'/, 2],
    ['unknown option', ['txt2img', 'x', '--stepz', '3'], 2, /unknown option '--stepz'/, 2],
    ['missing prompt', ['txt2img', ...run], 2, /missing the prompt/],
    ['img2img without a picture', ['img2img', 'x', ...run], 2, /missing --init-image/],
    ['outpaint without --extend', ['outpaint', 'x', ...run, '-i', f.valid], 2, /missing --extend/],
    ['inpaint without a mask', ['inpaint', 'x', ...run, '-i', f.valid], 2, /missing --mask/],
    ['--mask-from-alpha on a picture without alpha', ['inpaint', 'x', ...run, '-i', f.valid, '--mask-from-alpha'], 2, /no alpha channel/],
    ['--prompts-file with a prompt', ['txt2img', 'x', '--prompts-file', f.text, ...run], 2, /pass no prompt argument/],
    ['depth2img on an ordinary model without a depth map', ['depth2img', 'x', ...run, '-i', f.valid], 2, /missing --depth-map/],
    ['txt2img .gif output', ['txt2img', 'x', ...run, '-o', join(root, 'x.gif')], 2, /x\.gif: diffuse writes \.png, \.jpg, \.webp and \.avif/],
    ['prompt --model empty', ['prompt', 'x', '--model', ''], 2, /--model is empty/],
    ['prompt --steps 0x10', ['prompt', 'x', '--model', TINY_SD, '--steps', '0x10'], 2, /--steps must be a whole number/],
  ] as const) {
    // A second line is commander's "(Did you mean ...?)"; the help is many.
    const lines = (rest as unknown[])[0] as HostileCase['lines'];
    add({ group: 'flags', name, argv: [...argv], status, stderr: says, ...(lines ? { lines } : {}) });
  }

  // ---- prompts: length, nesting, files --------------------------------------------------------
  const deep = (open: string, close: string, k: number) => `${open.repeat(k)}a${close.repeat(k)}`;
  for (const [name, prompt, says] of [
    ['4,000 nested (', deep('(', ')', 4_000), /nests brackets 4000 levels deep; at most 100/],
    ['4,000 nested [', deep('[', ']', 4_000), /nests brackets 4000 levels deep/],
    ['10,000 unclosed (', '('.repeat(10_000), /nests brackets 10000 levels deep/],
    ['10,000 nested ( (20 KB: over the command-line limit)', deep('(', ')', 10_000), /the command line is 20 KB; at most 16 KB/],
    ['alternating [( 5,000 deep', '[('.repeat(2_500), /nests brackets 5000 levels deep/],
    ['101 levels', deep('(', ')', 101), /101 levels deep/],
    ['an edit inside 150 levels', `${'['.repeat(150)}a:b:0.5${']'.repeat(150)}`, /150 levels deep/],
  ] as const) {
    const o = out();
    add({ group: 'prompts', name: `txt2img ${name}`, argv: ['txt2img', prompt, ...run, '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
    add({ group: 'prompts', name: `prompt --explain ${name}`, argv: ['prompt', prompt, '--model', TINY_SD], status: 2, stderr: says });
  }
  {
    const o = out();
    add({ group: 'prompts', name: 'negative prompt nested 4,000 deep', argv: ['txt2img', 'x', '-n', deep('(', ')', 4_000), ...run, '-o', join(o, 'x.png')], status: 2, stderr: /the negative prompt nests/, watch: [o] });
  }
  const longPrompts = join(root, 'long-prompts.txt');
  const deepPrompts = join(root, 'deep-prompts.txt');
  const chunky = join(root, 'chunky.txt');
  const noPrompts = join(root, 'no-prompts.txt');
  const jsonDeep = join(root, 'deep.jsonl');
  const jsonHex = join(root, 'hex.jsonl');
  const setupPrompts = () => {
    writeFileSync(longPrompts, `a cat\n${'word '.repeat(20_000)}\n`);
    writeFileSync(deepPrompts, `# deep\n\n${deep('(', ')', 5000)}\n`);
    writeFileSync(chunky, `${'cat '.repeat(3000)}\n`);
    writeFileSync(noPrompts, '# only a comment\n\n   \n');
    writeFileSync(jsonDeep, `{"prompt": "a cat"}\n${JSON.stringify({ prompt: deep('[', ']', 5000) })}\n`);
    writeFileSync(jsonHex, `{"prompt": "a cat", "steps": "0x10"}\n`);
  };
  for (const [name, file, status, says] of [
    ['a 100,000-character line', longPrompts, 2, /--prompts-file line 2 is 99999 characters; at most 16384/],
    ['a line nested 5,000 deep', deepPrompts, 2, /--prompts-file line 3 nests brackets 5000 levels/],
    ['40 chunks', chunky, 2, /40 chunks of 75 tokens is too long; at most 32/],
    ['no prompts', noPrompts, 2, /has no prompts/],
    ['JSON lines, one nested 5,000 deep', jsonDeep, 2, /--prompts-file line 2 nests brackets 5000 levels/],
    ['JSON lines, steps "0x10"', jsonHex, 2, /steps.*must be a whole number/],
    ['a FIFO', f.fifo, 2, /--prompts-file: cannot read .*: it is a named pipe/],
    ['/dev/zero', f.deviceZero, 2, /--prompts-file: cannot read \/dev\/zero: it is a device/],
    ['a folder', f.dir, 2, /--prompts-file: cannot read .*: it is a folder/],
    ['a missing file', f.missing, 2, /--prompts-file: cannot read .*: no such file/],
  ] as const) {
    const o = out();
    add({ group: 'prompts', name: `--prompts-file ${name}`, argv: ['txt2img', '--prompts-file', file, ...run, '-o', join(o, 'x.png')], status, stderr: says, watch: [o], setup: setupPrompts });
  }
  // ONNX Runtime parses /proc/self/cmdline recursively: these crashed with SIGSEGV (exit 139).
  for (const [name, argv] of [
    ['a 14,000-word prompt', ['txt2img', 'cat '.repeat(14_000), ...run]],
    ['a 100,000-character negative prompt', ['txt2img', 'x', '-n', 'n'.repeat(100_000), ...run]],
    ['ten 3,000-character arguments', ['txt2img', ...Array.from({ length: 10 }, () => 'y'.repeat(3000))]],
  ] as const) {
    add({ group: 'prompts', name: `${name} (a process: the crash was native)`, argv: [...argv], status: 2, stderr: /the command line is \d+ KB; at most 16 KB/, spawn: true });
  }

  // ---- files: every input that reads or decodes, with what it must not read ---------------------
  const readers: Array<{ name: string; argv: (path: string) => string[]; label: string; extra?: RegExp }> = [
    { name: 'img2img -i', argv: (p) => ['img2img', 'x', ...run, '-i', p], label: '--init-image' },
    { name: 'inpaint --mask', argv: (p) => ['inpaint', 'x', ...run, '-i', f.valid, '--mask', p], label: '--mask' },
    { name: 'depth2img --depth-map', argv: (p) => ['depth2img', 'x', ...run, '-i', f.valid, '--depth-map', p], label: '--depth-map' },
    { name: 'outpaint -i', argv: (p) => ['outpaint', 'x', ...run, '-i', p, '--extend', '8'], label: '--init-image' },
    { name: 'watermark embed', argv: (p) => ['watermark', 'embed', p, '-o', join(root, 'wm-never.png')], label: 'image' },
    { name: 'watermark detect', argv: (p) => ['watermark', 'detect', p], label: 'image' },
    { name: 'upscale', argv: (p) => ['upscale', p, '--model', UPSCALER, '-q', '-o', join(root, 'up-never.png')], label: 'image' },
    { name: 'invert -i', argv: (p) => ['invert', 'x', ...run, '-i', p, '-o', join(root, 'inv-never.npy')], label: '--init-image' },
  ];
  const unreadable: Array<[keyof HostileFiles, RegExp]> = [
    ['missing', /no such file/],
    ['fifo', /it is a named pipe \(FIFO\), not a regular file/],
    ['dir', /it is a folder, not a file/],
    ['deviceZero', /it is a device, not a regular file/],
    ['empty', /it is empty; PNG, JPEG and WebP are read/],
    ['text', /it is not a PNG, JPEG or WebP picture; PNG, JPEG and WebP are read/],
    ['svg', /it is an SVG drawing; PNG, JPEG and WebP are read/],
    ['gif', /it is a GIF; PNG, JPEG and WebP are read/],
    ['bomb', /it is 12000x12000 \(144\.0 megapixels\); pictures of at most 67\.1 megapixels \(8192x8192\)/],
    ['truncated', /not a readable PNG, JPEG or WebP picture/],
  ];
  for (const r of readers) {
    for (const [kind, says] of unreadable) {
      const o = out();
      add({
        group: 'files',
        name: `${r.name} ${kind}`,
        argv: [...r.argv(f[kind]), ...(/^(watermark|upscale|invert)/.test(r.name) ? [] : ['-o', join(o, 'x.png')])],
        status: 2,
        stderr: new RegExp(`${r.label}: cannot read ${f[kind].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${says.source}`),
        watch: [o],
      });
    }
  }
  const pngReaders: Array<{ name: string; argv: (p: string) => string[]; label: string }> = [
    { name: 'info', argv: (p) => ['info', p], label: 'info' },
    { name: 'info --json', argv: (p) => ['info', p, '--json'], label: 'info' },
    { name: 'txt2img --from', argv: (p) => ['txt2img', '--from', p, ...run, '-o', join(root, 'from-never.png')], label: '--from' },
  ];
  const badPngs: Array<[keyof HostileFiles, RegExp]> = [
    ['missing', /no such file/], ['fifo', /named pipe/], ['dir', /folder/], ['deviceZero', /device/], ['empty', /not a PNG file \(bad signature\)/],
    ['text', /not a PNG file \(bad signature\)/], ['svg', /bad signature/], ['truncated', /truncated chunk|missing IEND/], ['manyChunks', /more than 256 text chunks/],
    ['badCrc', /CRC mismatch in tEXt chunk/], ['noIend', /missing IEND chunk/], ['ztxtBomb', /cannot decompress zTXt chunk/],
  ];
  for (const r of pngReaders) {
    for (const [kind, says] of badPngs) {
      add({ group: 'png', name: `${r.name} ${kind}`, argv: r.argv(f[kind]), status: 2, stderr: new RegExp(`${r.label}: cannot read .*${says.source}`) });
    }
  }
  add({ group: 'png', name: 'info escapes control characters', argv: ['info', f.escapes], status: 0, stdout: /^a \\x1b\]0;pwned\\x07 cat \\x1b\[2J\\x9b31m\\u202e\nSteps: 3/ });
  add({ group: 'png', name: 'info --json escapes C1 and bidi controls', argv: ['info', f.escapes, '--json'], status: 0, stdout: /\\u001b\]0;pwned\\u0007 cat \\u001b\[2J\\u009b31m\\u202e/ });
  add({ group: 'png', name: 'info on a 250 KB text chunk (was 260 s)', argv: ['info', f.hugeChunk], status: 0, stdout: /^a{250000}\n$/ });
  add({ group: 'png', name: 'info on 40 unknown keywords: a short line', argv: ['info', f.keywords], status: 1, stderr: /has text chunks \("ékey 0z+…", .* and 35 more\) but no generation/ });
  const brokenJpeg = join(root, 'broken.jpg');
  for (const label of ['info', '--from'] as const) {
    const argv = label === 'info' ? ['info', brokenJpeg] : ['txt2img', '--from', brokenJpeg, ...run];
    add({ group: 'png', name: `${label} on a JPEG whose segment runs past the end`, argv, status: 2, stderr: new RegExp(`${label}: .*malformed EXIF metadata: bad JPEG segment`), setup: () => writeFileSync(brokenJpeg, Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 0, 0])) });
  }
  add({ group: 'png', name: 'info on a PNG without text', argv: ['info', f.plain], status: 1, stderr: /carries no generation parameters/ });
  add({ group: 'png', name: '--from a PNG without parameters', argv: ['txt2img', '--from', f.plain, ...run], status: 2, stderr: /carries no A1111-style parameters/ });

  // ---- config files ---------------------------------------------------------------------------------
  const configDir = (name: string, files: Record<string, string>) => {
    const dir = join(root, 'config', name);
    return () => {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      for (const [file, text] of Object.entries(files)) {
        mkdirSync(join(dir, file, '..'), { recursive: true });
        writeFileSync(join(dir, file), text);
      }
      writeFileSync(join(dir, 'package.json'), files['package.json'] ?? '{"name":"x"}');
    };
  };
  const configCases: Array<[string, Record<string, string>, number, RegExp]> = [
    ['JSON syntax error', { '.diffuserc.json': '{"steps": 3,,}' }, 2, /cannot read the config file: JSON Error in .*\.diffuserc\.json: .+/],
    ['YAML syntax error', { '.diffuserc.yaml': 'steps: [3\n' }, 2, /cannot read the config file: .*diffuserc\.yaml.*\S/],
    ['an array', { '.diffuserc.json': '[1,2]' }, 2, /the config must be an object of settings/],
    ['a bad sampler', { '.diffuserc.json': '{"sampler":"euler_b"}' }, 2, /sampler in .*\.diffuserc\.json: unknown sampler 'euler_b'/],
    ['a bad schedule', { '.diffuserc.json': '{"schedule":"zigzag"}' }, 2, /schedule in .*\.diffuserc\.json: unknown schedule 'zigzag'/],
    ['steps "0x10"', { '.diffuserc.json': '{"steps":"0x10"}' }, 2, /steps in .*: must be a whole number|steps in .* must be a whole number/],
    ['steps 2.5', { '.diffuserc.json': '{"steps":2.5}' }, 2, /steps in .* must be a whole number/],
    ['model 42', { '.diffuserc.json': '{"model":42}' }, 2, /model in .* must be text \(got 42\)/],
    ['model ""', { '.diffuserc.json': '{"model":""}' }, 2, /model in .* is empty/],
    ['output ""', { '.diffuserc.json': '{"output":""}' }, 2, /output in .* is empty/],
    ['an unknown key', { '.diffuserc.json': '{"stepz":3}' }, 2, /unknown setting 'stepz'/],
    ['a per-image key', { '.diffuserc.json': '{"seed":3}' }, 2, /'seed' cannot be set in a config file/],
    ['package.json diffuse key not an object', { 'package.json': '{"name":"x","diffuse":"fast"}' }, 2, /the config must be an object/],
    ['a 2 MB config', { '.diffuserc.json': `{"negativePrompt":"${'x'.repeat(2 * 2 ** 20)}"}` }, 2, /config file: cannot read .*it is 2\.0 MB; at most 1\.0 MB is read/],
  ];
  for (const [name, files, status, says] of configCases) {
    // `diffuse config` shows settings; a sampler is checked where one is chosen, at generation.
    const argv = /sampler|schedule/.test(name) ? ['txt2img', 'x', ...run, '-o', join(root, 'config', name, 'x.png')] : ['config'];
    add({ group: 'config', name: `${argv[0]}: ${name}`, argv, cwd: join(root, 'config', name), setup: configDir(name, files), status: status as 2, stderr: says, watch: [join(root, 'config', name)], keep: Object.keys({ 'package.json': '', ...files }) });
  }
  {
    const name = 'code config found by the search';
    const marker = join(root, 'config', 'RAN');
    const setup = configDir(name, { 'diffuse.config.mjs': `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'x'); export default { steps: 2 };` });
    add({ group: 'config', name: `config: ${name} is not run`, argv: ['config'], cwd: join(root, 'config', name), setup, status: 0, stderr: /^warning: .*diffuse\.config\.mjs is not run: a config file that is code runs only when named with --config$/, watch: [join(root, 'config', name)], keep: ['diffuse.config.mjs', 'package.json'] });
    const sub = join(root, 'config', name, 'sub');
    add({ group: 'config', name: 'txt2img in a subfolder of a code config: not run', argv: ['txt2img', 'x', '--model', TINY_SD, '--steps', '50x'], cwd: sub, setup: () => (setup(), mkdirSync(sub)), status: 2, stderr: /^warning: .*diffuse\.config\.mjs is not run.*\nerror: --steps must be a whole number/, lines: 2 });
  }
  for (const [name, path, says] of [
    ['missing', f.missing, /--config: cannot read .*: no such file/],
    ['a FIFO', f.fifo, /--config: cannot read .*: it is a named pipe/],
    ['/dev/zero', f.deviceZero, /--config: cannot read \/dev\/zero: it is a device/],
    ['a folder', f.dir, /--config: cannot read .*: it is a folder/],
  ] as const) {
    add({ group: 'config', name: `--config ${name}`, argv: ['config', '--config', path], status: 2, stderr: says });
    const o = out();
    add({ group: 'config', name: `txt2img --config ${name}`, argv: ['txt2img', 'x', ...run, '--config', path, '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
  }

  // ---- embeddings -------------------------------------------------------------------------------------
  const embDir = join(root, 'embeddings');
  const setupEmb = () => {
    rmSync(embDir, { recursive: true, force: true });
    mkdirSync(embDir);
    symlinkSync(join(EMBEDDINGS, 'tiny-emb.safetensors'), join(embDir, 'tiny-emb.safetensors'));
    symlinkSync(join(EMBEDDINGS, 'evil-os-system.pt'), join(embDir, 'evil.pt'));
    symlinkSync(join(EMBEDDINGS, 'truncated.safetensors'), join(embDir, 'broken.safetensors'));
    symlinkSync(join(EMBEDDINGS, 'wrong-width.safetensors'), join(embDir, 'wide.safetensors'));
    symlinkSync(join(EMBEDDINGS, 'huge-header.safetensors'), join(embDir, 'huge.safetensors'));
    symlinkSync(join(FIXTURES, 'sdxl-embeddings', 'sdxlemb.safetensors'), join(embDir, 'sdxlemb.safetensors'));
    symlinkSync(join(FIXTURES, 'sdxl-embeddings', 'sd1emb.safetensors'), join(embDir, 'sd1emb.safetensors'));
    symlinkSync('/dev/zero', join(embDir, 'zero.pt'));
    symlinkSync(join(HOSTILE_CHECKPOINTS, 'absurd-shape.pth'), join(embDir, 'absurd.pt'));
    writeFileSync(join(embDir, 'locked.pt'), 'x');
    chmodSync(join(embDir, 'locked.pt'), 0);
  };
  const sdxl = ['--model', join(FIXTURES, 'tiny-sdxl'), '--steps', '1', '-q', '--seed', '1'];
  const embCases: Array<[string, string, number, RegExp | undefined, string[]?]> = [
    ['no prompt names a broken file', 'a photo of a cat', 0, undefined],
    ['a good one named', 'a photo of tiny-emb', 0, undefined],
    ['a pickle that calls os.system, named', 'an evil cat', 0, /^warning: embedding evil\.pt: .*refusing to load.*; 'evil' stays plain text$/],
    ['a truncated file, named', 'broken glass', 0, /^warning: embedding broken\.safetensors: .*; 'broken' stays plain text$/],
    ['another width, named', 'a wide view', 0, /^warning: embedding wide has vectors of width 48.*'wide' stays plain text$/],
    ['a huge header, named', 'huge waves', 0, /^warning: embedding huge\.safetensors: .*'huge' stays plain text$/],
    ['a .pt whose tensor claims 2^31 x 2^31 elements, named (was: a JS crash)', 'an absurd cat', 0, /^warning: embedding absurd\.pt: .*a tensor of size \[2147483648, 2147483648\] repeats a 1-element storage.*'absurd' stays plain text$/],
    ['/dev/zero as an embedding, named', 'zero gravity', 0, /^warning: cannot read embedding .*zero\.pt: it is a device, not a regular file; 'zero' stays plain text$/],
    ['an SDXL embedding on SD 1.x, named', 'a photo of sdxlemb', 0, /^warning: embedding sdxlemb is an SDXL embedding \(clip_l\/clip_g\), but this is an SD 1\.x\/2\.x model .*'sdxlemb' stays plain text$/],
    ['an SD 1.x embedding on SDXL, named', 'a photo of sd1emb', 0, /^warning: embedding sd1emb is an SD 1\.x\/2\.x embedding .* but this is an SDXL model, which needs clip_l \(16\) and clip_g \(24\) vectors.*'sd1emb' stays plain text$/, sdxl],
  ];
  for (const [name, prompt, status, says, model = run] of embCases) {
    const o = out();
    add({ group: 'embeddings', name: `--embeddings-dir: ${name}`, argv: ['txt2img', prompt, ...model, '--embeddings-dir', embDir, '-o', join(o, 'x.png')], status: status as 0, ...(says ? { stderr: says } : {}), setup: setupEmb, watch: [o], keep: ['x.png'] });
  }
  for (const [name, dir, says] of [
    ['missing', join(root, 'no-embeddings'), /--embeddings-dir: cannot list .*: no such folder/],
    ['a file', f.text, /--embeddings-dir: cannot list .*: it is a file, not a folder/],
    ['/dev/zero', '/dev/zero', /--embeddings-dir: cannot list \/dev\/zero: it is a file, not a folder/],
  ] as const) {
    const o = out();
    add({ group: 'embeddings', name: `--embeddings-dir ${name}`, argv: ['txt2img', 'x', ...run, '--embeddings-dir', dir, '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
  }

  // ---- model folders ------------------------------------------------------------------------------------
  const models = join(root, 'models');
  const modelCase = (name: string, edit: (dir: string) => void, status: 1 | 2, says: RegExp, command: string[] = ['txt2img', 'x']) => {
    const dir = join(models, name.replace(/[^a-z0-9]+/gi, '-'));
    const o = out();
    add({ group: 'models', name: `model: ${name}`, argv: [...command, '--model', dir, '--steps', '1', '-q', '-o', join(o, 'x.png')], status, stderr: says, watch: [o], setup: () => void (rmSync(dir, { recursive: true, force: true }), brokenModel(dir, edit)) });
  };
  const sched = 'scheduler/scheduler_config.json';
  const schedCases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['num_train_timesteps 0', { num_train_timesteps: 0 }, /num_train_timesteps must be a whole number from 2 to 100000 \(got 0\)/],
    ['num_train_timesteps "abc"', { num_train_timesteps: 'abc' }, /num_train_timesteps must be a whole number/],
    ['num_train_timesteps 1e9', { num_train_timesteps: 1e9 }, /num_train_timesteps must be/],
    ['beta_start -1', { beta_start: -1 }, /beta_start must be a number above 0/],
    ['beta_end 2', { beta_end: 2 }, /beta_end must be a number above 0 and at most 1/],
    ['beta_start above beta_end', { beta_start: 0.5, beta_end: 0.1 }, /beta_start \(0\.5\) is above beta_end/],
    ['beta_schedule "cosine"', { beta_schedule: 'cosine' }, /beta_schedule must be one of linear, scaled_linear, squaredcos_cap_v2/],
    ['prediction_type "x0"', { prediction_type: 'x0' }, /prediction_type must be one of epsilon, v_prediction, sample/],
    ['timestep_spacing 3', { timestep_spacing: 3 }, /timestep_spacing must be one of/],
    ['steps_offset -1', { steps_offset: -1 }, /steps_offset must be a whole number/],
    ['clip_sample "yes"', { clip_sample: 'yes' }, /clip_sample must be true or false/],
    ['trained_betas of the wrong length', { trained_betas: [0.1, 0.2] }, /trained_betas has 2 values but num_train_timesteps is 1000/],
    ['trained_betas with a string', { trained_betas: [0.1, 'x'] }, /trained_betas \[1\] must be a number/],
    ['betas that underflow', { beta_start: 0.9, beta_end: 0.99, beta_schedule: 'linear' }, /these betas make sigma \d+ Infinity \(alphas_cumprod underflows\)/],
    ['final_sigmas_type "one"', { final_sigmas_type: 'one' }, /final_sigmas_type must be one of zero, sigma_min/],
  ];
  for (const [name, patch, says] of schedCases) {
    modelCase(`scheduler ${name}`, (d) => patchJson(d, sched, patch), 1, new RegExp(`scheduler_config\\.json: ${says.source}`));
  }
  const componentCases: Array<[string, string, Record<string, unknown>, RegExp]> = [
    ['VAE scaling_factor "abc"', 'vae_decoder/config.json', { scaling_factor: 'abc' }, /vae_decoder\/config\.json: scaling_factor must be a number above 0/],
    ['VAE scaling_factor 0', 'vae_decoder/config.json', { scaling_factor: 0 }, /scaling_factor must be a number above 0/],
    ['VAE block_out_channels []', 'vae_encoder/config.json', { block_out_channels: [] }, /block_out_channels must be a list of 1 to 8 values/],
    ['VAE block_out_channels ["a"]', 'vae_decoder/config.json', { block_out_channels: ['a'] }, /block_out_channels \[0\] must be a whole number/],
    ['VAE latent_channels 0', 'vae_decoder/config.json', { latent_channels: 0 }, /latent_channels must be a whole number from 1 to 64/],
    ['VAE sample_size 0', 'vae_decoder/config.json', { sample_size: 0 }, /sample_size must be a whole number from 8 to 8192/],
    ['UNet sample_size 0', 'unet/config.json', { sample_size: 0 }, /unet\/config\.json: sample_size must be a whole number from 1 to 1024/],
    ['UNet sample_size 100000', 'unet/config.json', { sample_size: 100000 }, /sample_size must be a whole number from 1 to 1024/],
    ['UNet sample_size 2.5', 'unet/config.json', { sample_size: 2.5 }, /sample_size must be a whole number from 1 to 1024 \(got 2\.5\)/],
    ['text encoder hidden_size "wide"', 'text_encoder/config.json', { hidden_size: 'wide' }, /text_encoder\/config\.json: hidden_size must be a whole number/],
  ];
  for (const [name, file, patch, says] of componentCases) modelCase(name, (d) => patchJson(d, file, patch), 1, says);
  modelCase('UNet sample_size 1024 with an 8-level VAE', (d) => (patchJson(d, 'unet/config.json', { sample_size: 1024 }), patchJson(d, 'vae_decoder/config.json', { block_out_channels: [1, 1, 1, 1, 1, 1, 1, 1] })), 1, /makes 131072 px images; at most 8192/);
  const fileCases: Array<[string, (d: string) => void, RegExp]> = [
    ['model_index.json not JSON', (d) => writeFileSync(join(d, 'model_index.json'), '{oops'), /model_index\.json is not valid JSON/],
    ['model_index.json an array', (d) => writeFileSync(join(d, 'model_index.json'), '[]'), /model_index\.json is not a JSON object/],
    ['model_index.json a FIFO', (d) => (rmSync(join(d, 'model_index.json')), symlinkSync(f.fifo, join(d, 'model_index.json'))), /model config: cannot read .*model_index\.json: it is a named pipe/],
    ['model_index.json /dev/zero', (d) => (rmSync(join(d, 'model_index.json')), symlinkSync('/dev/zero', join(d, 'model_index.json'))), /model_index\.json: it is a device/],
    ['scheduler config a folder', (d) => (rmSync(join(d, sched)), mkdirSync(join(d, sched))), /scheduler_config\.json: it is a folder/],
    ['scheduler config missing', (d) => rmSync(join(d, sched)), /has no scheduler\/scheduler_config\.json/],
    ['unet/model.onnx missing', (d) => rmSync(join(d, 'unet/model.onnx')), /has no unet\/model\.onnx/],
    ['garbage merges.txt', (d) => writeFileSync(join(d, 'tokenizer/merges.txt'), '#version: 0.2\nfoo bar\nbaz qux\n'), /merges\.txt line 2 \("foo bar"\) is not a pair whose merge is in vocab\.json/],
    ['merges.txt of one word per line', (d) => writeFileSync(join(d, 'tokenizer/merges.txt'), '#version: 0.2\nth\n'), /merges\.txt line 2 .*not a pair/],
    ['vocab.json an array', (d) => writeFileSync(join(d, 'tokenizer/vocab.json'), '[1]'), /vocab\.json must hold a JSON object/],
    ['vocab.json /dev/zero', (d) => (rmSync(join(d, 'tokenizer/vocab.json')), symlinkSync('/dev/zero', join(d, 'tokenizer/vocab.json'))), /tokenizer: cannot read .*vocab\.json: it is a device/],
    ['the text encoder as the VAE decoder', (d) => (rmSync(join(d, 'vae_decoder/model.onnx')), symlinkSync(join(TINY_SD, 'text_encoder/model.onnx'), join(d, 'vae_decoder/model.onnx'))), /vae_decoder\/model\.onnx is not a VAE decoder for this model: its input input_ids is int/],
    ['a text file as the UNet', (d) => (rmSync(join(d, 'unet/model.onnx')), writeFileSync(join(d, 'unet/model.onnx'), 'not onnx')), /unet|protobuf|model/i],
  ];
  for (const [name, edit, says] of fileCases) modelCase(name, edit, 1, says);
  modelCase('an inpainting UNet for txt2img', (d) => (rmSync(join(d, 'unet/model.onnx')), symlinkSync(join(FIXTURES, 'tiny-sd-inpaint/unet/model.onnx'), join(d, 'unet/model.onnx'))), 2, /an inpainting UNet \(9 input channels\): it paints with diffuse inpaint or outpaint, not txt2img/);
  modelCase('an inpainting UNet for img2img', (d) => (rmSync(join(d, 'unet/model.onnx')), symlinkSync(join(FIXTURES, 'tiny-sd-inpaint/unet/model.onnx'), join(d, 'unet/model.onnx'))), 2, /not img2img/, ['img2img', 'x', '-i', f.valid]);
  for (const [name, ref, status, says] of [
    ['--model a missing folder', join(root, 'no-model'), 2, /model folder not found/],
    ['--model a file that is not a checkpoint', f.text, 2, /not a valid safetensors file|is not a/],
    ['--model a FIFO', f.fifo, 2, /is not a folder/],
    ['--model /dev/zero', '/dev/zero', 2, /is not a folder/],
    ['--model with control characters', 'sd\u001b15', 2, /control characters/],
    ['--model ..', '..', 1, /no model_index\.json|not a diffusers ONNX model folder/],
    ['--vae a folder without vae_decoder', root, 2, /--vae .*: no vae_decoder\/model\.onnx there/],
  ] as const) {
    const o = out();
    const argv = name.startsWith('--vae') ? ['txt2img', 'x', ...run, '--vae', ref] : ['txt2img', 'x', '--model', ref, '--steps', '1', '-q'];
    add({ group: 'models', name, argv: [...argv, '-o', join(o, 'x.png')], status, stderr: says, watch: [o] });
  }
  for (const [name, argv, status, says] of [
    ['models path /etc', ['models', 'path', '/etc'], 2, /models path: \/etc has no model_index\.json: not a diffusers ONNX model folder/],
    ['models path a missing folder', ['models', 'path', './no-such-model'], 2, /model folder not found/],
    ['models verify a folder', ['models', 'verify', TINY_SD], 2, /models verify: .* is a folder path.*only downloaded models have checksums/],
    ['models rm a folder', ['models', 'rm', '/etc'], 2, /models rm: \/etc is a folder path/],
    ['models verify an unknown id', ['models', 'verify', 'no-such-model'], 2, /unknown model|not in the registry|no-such-model/],
    ['models pull an id with ..', ['models', 'pull', 'a..b'], 2, /must not contain|model id/],
    ['models pull hf: with a third slash', ['models', 'pull', 'hf:a/b/c'], 2, /repo id must be exactly "org\/name"/],
    ['models pull a bad task', ['models', 'pull', 'sd15', '--task', 'paint'], 2, /--task must be one of/],
    ['models add a missing path', ['models', 'add', join(root, 'nope'), '--id', 'nope'], 2, /nope does not exist/],
  ] as const) {
    add({ group: 'models', name, argv: [...argv], status, stderr: says });
  }

  // ---- --control model=…: ControlNet files are converted, so each is read as a weight file ------------
  const cn = join(root, 'controlnet');
  const cnRecipe = () => readJson<Recipe>(join(FIXTURES, 'controlnet-files', 'sd1.recipe.json.gz'));
  const setupCn = () => {
    mkdirSync(join(cn, 'empty'), { recursive: true });
    const bytes = checkpointBytes(cnRecipe());
    writeFileSync(join(cn, 'truncated.safetensors'), bytes.subarray(0, bytes.length - 4096));
    const r = cnRecipe();
    writeFileSync(join(cn, 'sdxl.safetensors'), checkpointBytes({ ...r, tensors: [...r.tensors, ['control_model.label_emb.0.0.weight', 'F16', [256, 64], 'uniform', -3, 0]] }));
    // A diffusers folder whose config.json is a device: it is read and hashed, so it must be refused unread.
    mkdirSync(join(cn, 'zero-config'), { recursive: true });
    writeFileSync(join(cn, 'zero-config', 'diffusion_pytorch_model.safetensors'), checkpointBytes(r));
    if (!existsSync(join(cn, 'zero-config', 'config.json'))) symlinkSync('/dev/zero', join(cn, 'zero-config', 'config.json'));
    writeDiffusersFolder(join(cn, 'sdxl-diffusers'), 'controlnet', { layoutDir: join(FIXTURES, 'sdxl-controlnet'), tokenizers: {} });
  };
  for (const [name, model, says] of [
    ['/dev/zero (was: hashed forever)', '/dev/zero', /--control model: cannot read \/dev\/zero: it is a device, not a regular file/],
    ['a FIFO', f.fifo, /--control model: cannot read .*: it is a named pipe/],
    ['a truncated file', join(cn, 'truncated.safetensors'), /truncated\.safetensors is not a valid safetensors file/],
    ['a .pth whose tensors claim 2^31 x 2^31 elements', join(HOSTILE_CHECKPOINTS, 'absurd-shape.pth'), /absurd-shape\.pth: torch file: a tensor of size \[2147483648, 2147483648\] repeats a 1-element storage/],
    ['a safetensors file that is no ControlNet', join(EMBEDDINGS, 'learned_embeds.safetensors'), /learned_embeds\.safetensors: not a ControlNet/],
    ['an SDXL ControlNet in the LDM layout', join(cn, 'sdxl.safetensors'), /sdxl\.safetensors: an SDXL ControlNet in the LDM layout \(label_emb\); diffuse converts SDXL ControlNets in diffusers' layout/],
    ['an SDXL ControlNet with an SD 1.x model', join(cn, 'sdxl-diffusers'), /ControlNet 0 \(sdxl-diffusers\) is an SDXL ControlNet and tiny-sd is an SD 1\.x\/2\.x model: use a ControlNet made for SD 1\.x\/2\.x/],
    ['a folder without graph or weights', join(cn, 'empty'), /--control: model .*empty: no controlnet\/model\.onnx or model\.onnx there, nor ControlNet weights/],
    ['a folder whose config.json is /dev/zero', join(cn, 'zero-config'), /model config: cannot read .*zero-config\/config\.json: it is a device, not a regular file/],
  ] as const) {
    const o = out();
    add({ group: 'controlnet', name: `--control model=${name}`, argv: ['txt2img', 'x', ...run, '--control', `image=${f.valid},model=${model}`, '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o, cn], keep: ['empty', 'truncated.safetensors', 'sdxl.safetensors', 'zero-config', 'sdxl-diffusers'], setup: setupCn });
  }

  // ---- SDXL ControlNets in diffusers' layout: config.json numbers the weights do not bear out ------------------
  // Each refused from the config and the header before a tensor is read or a graph is written.
  const sdxlCn = (name: string) => join(cn, `sdxl-${name.replace(/[^a-z0-9]+/gi, '-')}`);
  for (const [name, patch, says] of [
    ['block_out_channels of 2^30', { block_out_channels: [2 ** 30, 2 ** 30] }, /config\.json's block_out_channels is \[1073741824,1073741824\], the weights' \[8,16\]; the folder's config\.json belongs to another ControlNet: re-download the folder/],
    ['transformer_layers_per_block of the wrong length', { transformer_layers_per_block: [1, 2, 3] }, /config\.json's transformer_layers_per_block is \[1,2,3\], the weights' \[1,2\]/],
    ['transformer_layers_per_block of 10^9', { transformer_layers_per_block: [1, 1e9] }, /transformer_layers_per_block is \[1,1000000000\], the weights' \[1,2\]/],
    ['projection_class_embeddings_input_dim unlike the weights', { projection_class_embeddings_input_dim: 2816 }, /projection_class_embeddings_input_dim is 2816, the weights' 60/],
    ['addition_time_embed_dim of 2^40', { addition_time_embed_dim: 2 ** 40 }, /config\.json: addition_time_embed_dim is 1099511627776, expected a whole number from 2 to 65536/],
    ['attention_head_dim of 0', { attention_head_dim: [0, 0] }, /attn1: width 16 does not split into 0 heads/],
    ['cross_attention_dim a string', { cross_attention_dim: 'wide' }, /config\.json's cross_attention_dim is "wide", the weights' 40/],
    ['layers_per_block of 10^9', { layers_per_block: 1e9 }, /config\.json's layers_per_block is 1000000000, the weights' 1/],
    ['conditioning_embedding_out_channels of 2^30', { conditioning_embedding_out_channels: [2 ** 30] }, /conditioning_embedding_out_channels is \[1073741824\], the weights' \[8,16\]/],
    ['norm_eps -1 (was: painted; a root of a negative variance)', { norm_eps: -1 }, /config\.json: norm_eps is -1, expected a number above 0 and at most 1/],
    ['attention_head_dim a string (was: ignored)', { attention_head_dim: 'x' }, /config\.json: attention_head_dim is "x", expected a whole number or a list of them/],
    ['addition_time_embed_dim -4 (was: a graph that does not load, left in the cache)', { addition_time_embed_dim: -4 }, /config\.json: addition_time_embed_dim is -4, expected a whole number from 2 to 65536/],
    ['addition_time_embed_dim 2.5 (was: a BigInt error)', { addition_time_embed_dim: 2.5 }, /addition_time_embed_dim is 2\.5, expected a whole number from 2 to 65536/],
  ] as const) {
    const dir = sdxlCn(name);
    const home = `${dir}-home`;
    const o = out();
    add({
      group: 'controlnet',
      name: `--control model=an SDXL ControlNet folder: ${name}`,
      argv: ['txt2img', 'x', ...sdxl, '--control', `image=${f.valid},model=${dir}`, '-o', join(o, 'x.png')],
      status: 2,
      stderr: says,
      env: { DIFFUSE_HOME: home },
      watch: [o, home],
      keep: ['converted/hashes.json'],
      setup: () => {
        rmSync(dir, { recursive: true, force: true });
        rmSync(home, { recursive: true, force: true });
        writeDiffusersFolder(dir, 'controlnet', { layoutDir: join(FIXTURES, 'sdxl-controlnet'), tokenizers: {} });
        patchJson(dir, 'config.json', patch);
      },
    });
  }

  // ---- --control type=softedge|lineart,detector=FILE: the network's weights, read as a weight file, and the picture it runs on ----
  const hed = join(root, 'hed');
  const absurdPth = join(HOSTILE_CHECKPOINTS, 'absurd-shape.pth');
  const setupHed = () => {
    mkdirSync(hed, { recursive: true });
    const pth = gunzipSync(readFileSync(join(FIXTURES, 'controlnet-files', 'pth.pth.gz')));
    writeFileSync(join(hed, 'truncated.pth'), pth.subarray(0, pth.length >> 1));
    writeFileSync(join(hed, 'not-torch.pth'), storedZip([['notes/readme.txt', Buffer.from('a zip, but no torch.save archive\n')]]));
    writeFileSync(join(hed, 'controlnet.pth'), pth);
    // HED's first tensors, the first convolution taking 4 channels (an RGBA network): its keys, not its shapes.
    writeFileSync(join(hed, 'rgba.safetensors'), checkpointBytes({ seed: 1, tensors: [['norm', 'F32', [1, 3, 1, 1], 'uniform', -1, 1], ['block1.convs.0.weight', 'F32', [64, 4, 3, 3], 'uniform', -1, 1]] } as Recipe));
    mkdirSync(join(hed, 'folder.pth'), { recursive: true });
    // 2112x2048 of one colour: a few kB of PNG that decodes, then pads to 2112x2048 > 2048x2048.
    writeFileSync(join(hed, 'large.png'), bombPng(2112, 2048, 2048));
  };
  const CONTROL_FOLDER = join(FIXTURES, 'tiny-sd-control', 'controlnet');
  const refusedDetector = (what: string) => new RegExp(`${what.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not HED's ControlNetHED\\.pth \\(`);
  for (const [name, detector, says, picture = f.valid] of [
    ['a truncated .pth', join(hed, 'truncated.pth'), /truncated\.pth: zip: no end-of-directory record .*; it is not a whole torch\.save archive: re-download it/],
    ['a zip that is no torch file', join(hed, 'not-torch.pth'), /not-torch\.pth: torch file: no <name>\/data\.pkl in the archive; it is not a whole torch\.save archive/],
    ['a pickle calling os.system', join(HOSTILE_CHECKPOINTS, 'evil.ckpt'), /evil\.ckpt: pickle: refusing to load: the file references posix\.system/],
    ['a legacy torch pickle', join(HOSTILE_CHECKPOINTS, 'legacy.ckpt'), /legacy \(pre-1\.6\) torch pickle/],
    ['a .pth whose tensors claim 2^31 x 2^31 elements', absurdPth, /absurd-shape\.pth: torch file: a tensor of size \[2147483648, 2147483648\] repeats a 1-element storage \(strides \[0, 0\]\); expanded views are read up to 16777216 elements/],
    ['a header declaring a 2^40-byte header', join(HOSTILE_CHECKPOINTS, 'huge-header.safetensors'), /huge-header\.safetensors is not a valid safetensors file: header claims 1099511627776 bytes/],
    ['HED keys with another shape', join(hed, 'rgba.safetensors'), /rgba\.safetensors is not HED's ControlNetHED\.pth \(block1\.convs\.0\.weight has shape \[64, 4, 3, 3\], expected \[64, 3, 3, 3\]\)/],
    ['a ControlNet .pth', join(hed, 'controlnet.pth'), refusedDetector('controlnet.pth')],
    ['an SD checkpoint', join(FIXTURES, 'graphs', 'mini.ckpt'), refusedDetector('mini.ckpt')],
    ['a folder', join(hed, 'folder.pth'), /--control: detector .*folder\.pth is a folder; pass the network's weight file \(lllyasviel\/Annotators'\) itself/],
    ['a FIFO', f.fifo, /--control detector: cannot read .*: it is a named pipe \(FIFO\), not a regular file/],
    ['/dev/zero', '/dev/zero', /--control detector: cannot read \/dev\/zero: it is a device, not a regular file/],
    ['any detector on a 2112x2048 picture', absurdPth, /--control image: type=softedge runs its network on the picture as it is, and 2112x2048 \(padded 2112x2048\) is more than 4 megapixels \(2048x2048\); scale the picture down first/, join(hed, 'large.png')],
  ] as const) {
    const o = out();
    add({
      group: 'softedge',
      name: `--control type=softedge,detector=${name}`,
      argv: ['txt2img', 'x', ...run, '--control', `type=softedge,image=${picture},model=${CONTROL_FOLDER},detector=${detector}`, '-o', join(o, 'x.png')],
      status: 2,
      stderr: says,
      watch: [o],
      setup: setupHed,
    });
  }
  // The other networks' types: the same reader and size check, and HED's keys refused as not theirs.
  for (const [type, network] of [['lineart', "lineart's"], ['softedge-pidinet', "PiDiNet's"], ['lineart-anime', "lineart_anime's"], ['mlsd', "M-LSD's"], ['openpose', "OpenPose's"], ['openpose-full', "OpenPose's"], ['scribble-hed', "HED's"], ['scribble-pidinet', "PiDiNet's"]] as const) {
    // openpose-full's hand and face networks given too (left out, their registry ids are looked up first).
    const extra = type === 'openpose-full' ? `,hand-detector=${absurdPth},face-detector=${absurdPth}` : '';
    for (const [name, detector, says, picture = f.valid] of [
      ['a .pth whose tensors claim 2^31 x 2^31 elements', absurdPth, /absurd-shape\.pth: torch file: a tensor of size \[2147483648, 2147483648\] repeats a 1-element storage/],
      ["HED's network", join(hed, 'rgba.safetensors'), new RegExp(`rgba\\.safetensors is not ${network} `)],
      ['any detector on a 2112x2048 picture', absurdPth, new RegExp(`--control image: type=${type} runs its network on the picture as it is, and 2112x2048 \\(padded 2112x2048\\) is more than 4 megapixels`), join(hed, 'large.png')],
    ] as const) {
      const o = out();
      add({
        group: 'softedge',
        name: `--control type=${type},detector=${name}`,
        argv: ['txt2img', 'x', ...run, '--control', `type=${type},image=${picture},model=${CONTROL_FOLDER},detector=${detector}${extra}`, '-o', join(o, 'x.png')],
        status: 2,
        stderr: says,
        watch: [o],
        setup: setupHed,
      });
    }
  }

  // OpenPose's hand and face networks have fields of their own, refused on a type that runs no such network.
  for (const [type, field] of [['openpose', 'face-detector'], ['openpose-face', 'hand-detector'], ['openpose-hand', 'face-detector']] as const) {
    const o = out();
    add({
      group: 'softedge',
      name: `--control type=${type},${field}=`,
      argv: ['txt2img', 'x', ...run, '--control', `type=${type},image=${f.valid},model=${CONTROL_FOLDER},detector=${absurdPth},${field}=${absurdPth}`, '-o', join(o, 'x.png')],
      status: 2,
      stderr: new RegExp(`--control: ${field}= is the \\w+ network of type=.*; type=${type} takes none`),
      watch: [o],
    });
  }
  // DWPose's two published graphs, given as a folder: anything else, graphs that are not ONNX, a picture too large.
  const dwpose = join(root, 'dwpose');
  const setupDwpose = () => {
    setupHed();
    mkdirSync(dwpose, { recursive: true });
    for (const name of ['yolox_l.onnx', 'dw-ll_ucoco_384.onnx']) writeFileSync(join(dwpose, name), 'not a protobuf: an HTML error page, say\n');
  };
  for (const [name, detector, status, says, picture = f.valid] of [
    ['a file, not a folder', absurdPth, 2, /--control: type=dwpose needs detector=DIR: .*absurd-shape\.pth is not a folder; pass a folder holding yolox_l\.onnx and dw-ll_ucoco_384\.onnx/],
    ['/dev/zero', '/dev/zero', 2, /--control: type=dwpose needs detector=DIR: \/dev\/zero is not a folder/],
    ['a folder of graphs that are not ONNX', dwpose, 1, /cannot load .*yolox_l\.onnx: .*Protobuf parsing failed/],
    ['its folder on a 2112x2048 picture', dwpose, 2, /--control image: type=dwpose runs its network on the picture as it is, and 2112x2048 \(padded 2112x2048\) is more than 4 megapixels/, join(hed, 'large.png')],
  ] as const) {
    const o = out();
    add({
      group: 'softedge',
      name: `--control type=dwpose,detector=${name}`,
      argv: ['txt2img', 'x', ...run, '--control', `type=dwpose,image=${picture},model=${CONTROL_FOLDER},detector=${detector}`, '-o', join(o, 'x.png')],
      status: status as 1 | 2,
      stderr: says,
      watch: [o],
      setup: setupDwpose,
    });
  }

  // ---- diffusers PyTorch folders: converted by --model first, refused in one line when broken ------------------
  // Each in its own cache, which must hold no converted folder afterwards.
  const lyingHeader = (path: string): void =>
    writeFileSync(path, editedHeader(readFileSync(path), (header) => {
      const key = Object.keys(header).find((k) => k !== '__metadata__')!;
      header[key]!.shape = header[key]!.shape!.map((d) => d * 2); // the offsets still span the old size
    }));
  for (const [name, edit, says] of [
    ['no unet/', (d: string) => rmSync(join(d, 'unet'), { recursive: true }), /is not a whole diffusers model folder \(no unet\/config\.json\)/],
    ['unet/config.json not JSON', (d: string) => writeFileSync(join(d, 'unet', 'config.json'), '{"in_channels": 4,'), /unet\/config\.json: not valid JSON/],
    ['text_encoder/config.json an array', (d: string) => writeFileSync(join(d, 'text_encoder', 'config.json'), '[1, 2]'), /text_encoder\/config\.json is not a JSON object/],
    ['a UNet safetensors header declaring twice the sizes its offsets hold', (d: string) => lyingHeader(join(d, 'unet', 'diffusion_pytorch_model.safetensors')), /diffusion_pytorch_model\.safetensors is not a valid safetensors file/],
  ] as const) {
    const dir = join(models, `pytorch-${name.replace(/[^a-z0-9]+/gi, '-')}`);
    const home = `${dir}-home`;
    const o = out();
    add({
      group: 'models',
      name: `--model a PyTorch folder: ${name}`,
      argv: ['txt2img', 'x', '--model', dir, '--steps', '1', '-q', '-o', join(o, 'x.png')],
      status: 2,
      stderr: says,
      env: { DIFFUSE_HOME: home },
      watch: [o, home],
      setup: () => void (rmSync(dir, { recursive: true, force: true }), rmSync(home, { recursive: true, force: true }), edit(writeDiffusersFolder(dir, 'sd1'))),
    });
  }

  // ---- outputs: refused before the first step, for the whole run ------------------------------------
  const outCases: Array<[string, (o: string) => string[], (o: string) => void, number, RegExp, string[]]> = [
    ['an existing file', (o) => ['-o', join(o, 'x.png')], (o) => writeFileSync(join(o, 'x.png'), 'mine'), 1, /x\.png already exists \(pass --overwrite to replace it\)/, ['x.png']],
    ['out-2.png of a batch of 2 exists', (o) => ['-o', join(o, 'x.png'), '--batch-size', '2'], (o) => writeFileSync(join(o, 'x-2.png'), 'mine'), 1, /x-2\.png already exists/, ['x-2.png']],
    ['the 3rd of 2 batches of 2 exists', (o) => ['-o', join(o, 'x.png'), '--batch-size', '2', '--batch-count', '2'], (o) => writeFileSync(join(o, 'x-3.png'), 'mine'), 1, /x-3\.png already exists/, ['x-3.png']],
    ['a file where the folder goes', (o) => ['-o', join(o, 'file', 'x.png')], (o) => writeFileSync(join(o, 'file'), 'mine'), 1, /cannot write .*: .*file is not a folder/, ['file']],
    // sysfs refuses new files even to root (a chmod 500 folder would not).
    ['a folder no one may write', () => ['-o', '/sys/diffuse-hostile/x.png'], () => undefined, 1, /cannot write .*: \/sys is not writable \(EACCES\)/, []],
  ];
  for (const [name, args, setup, status, says, keep] of outCases) {
    const o = out();
    add({ group: 'outputs', name: `output: ${name}`, argv: ['txt2img', 'x', ...run, ...args(o)], status: status as 1, stderr: says, setup: () => setup(o), watch: [o], keep });
  }

  // ---- checkpoints: diffuse convert and --model file ----------------------------------------------------
  for (const name of ['gap.safetensors', 'header-past-end.safetensors', 'huge-header.safetensors', 'not-json.safetensors', 'overlap.safetensors', 'size-mismatch.safetensors', 'trailing-bytes.safetensors', 'truncated.safetensors', 'unknown-dtype.safetensors']) {
    add({ group: 'convert', name: `convert ${name}`, argv: ['convert', join(HOSTILE_CHECKPOINTS, name), '-q', '-o', join(root, 'converted', name)], status: 2, stderr: new RegExp(`${name.replace('.', '\\.')} is not a valid safetensors file`) });
  }
  for (const [name, path, says] of [
    ['a pickle calling os.system', join(HOSTILE_CHECKPOINTS, 'evil.ckpt'), /refusing to load: the file references posix\.system/],
    ['a legacy pickle', join(HOSTILE_CHECKPOINTS, 'legacy.ckpt'), /legacy \(pre-1\.6\) torch pickle/],
    ['a .pth whose tensors claim 2^31 x 2^31 elements', join(HOSTILE_CHECKPOINTS, 'absurd-shape.pth'), /absurd-shape\.pth: torch file: a tensor of size \[2147483648, 2147483648\] repeats a 1-element storage/],
    ['a valid file that is no model', join(HOSTILE_CHECKPOINTS, 'valid.safetensors'), /not a complete Stable Diffusion checkpoint/],
    ['/dev/zero', '/dev/zero', /convert: cannot read \/dev\/zero: it is a device/],
    ['a FIFO', f.fifo, /convert: cannot read .*: it is a named pipe/],
    ['a missing file', f.missing, /does not exist/],
    ['a folder that is no model', f.dir, /is not a whole diffusers model folder \(no model_index\.json nor unet\/config\.json\)/],
    ['an empty file', f.empty, /not a valid safetensors file|empty|too short/],
  ] as const) {
    add({ group: 'convert', name: `convert ${name}`, argv: ['convert', path, '-q', '-o', join(root, 'converted', name.replace(/\W+/g, '-'))], status: 2, stderr: says });
  }
  for (const [name, argv, says] of [
    ['--precision fp8', ['convert', join(HOSTILE_CHECKPOINTS, 'valid.safetensors'), '--precision', 'fp8'], /--precision must be fp32 or fp16/],
    ['--prediction x0', ['convert', join(HOSTILE_CHECKPOINTS, 'valid.safetensors'), '--prediction', 'x0'], /--prediction must be epsilon or v/],
    ['--model a pickle calling os.system', ['txt2img', 'x', '--model', join(HOSTILE_CHECKPOINTS, 'evil.ckpt'), '-q'], /refusing to load/],
  ] as const) {
    add({ group: 'convert', name, argv: [...argv], status: 2, stderr: says });
  }

  // ---- safety checker ---------------------------------------------------------------------------------------
  const safetyParts = (graph: string, processor: string) => (d: string) => {
    mkdirSync(join(d, 'safety_checker'));
    symlinkSync(graph, join(d, 'safety_checker', 'model.onnx'));
    mkdirSync(join(d, 'feature_extractor'));
    writeFileSync(join(d, 'feature_extractor', 'preprocessor_config.json'), processor);
  };
  const checkerGraph = join(FIXTURES, 'tiny-safety', 'safety_checker', 'model.onnx');
  const checked = ['txt2img', 'x', '--safety-checker'];
  modelCase('--safety-checker without safety_checker/', () => {}, 2, /has no safety_checker\/model\.onnx; 'diffuse models pull <id> --safety-checker'/, checked);
  modelCase('--safety-checker, preprocessor size -3', safetyParts(checkerGraph, '{"size": -3}'), 1, /preprocessor_config\.json: size must be a whole number from 1 to 8192 \(got -3\)/, checked);
  modelCase('--safety-checker, preprocessor not JSON', safetyParts(checkerGraph, '{"size": 22'), 1, /preprocessor_config\.json is not valid JSON/, checked);
  modelCase('--safety-checker, crop_size {shortest_edge}', safetyParts(checkerGraph, '{"crop_size": {"shortest_edge": 3}}'), 1, /crop_size must be a number or \{"height": h, "width": w\}/, checked);
  modelCase('--safety-checker, a UNet as the checker', safetyParts(join(TINY_SD, 'unet', 'model.onnx'), '{}'), 1, /safety_checker\/model\.onnx takes .*; a Stable Diffusion safety checker takes clip_input and images/, checked);
  add({ group: 'safety', name: '--safety-action pixelate', argv: ['txt2img', 'x', ...run, '--safety-action', 'pixelate'], status: 2, stderr: /--safety-action must be one of black, blur \(got 'pixelate'\)/ });

  // ---- --latents (.npy) and invert ------------------------------------------------------------------------------
  const npy = (name: string) => join(root, 'npy', name);
  mkdirSync(npy('dir.npy'), { recursive: true });
  for (const [name, target] of [['zero.npy', '/dev/zero'], ['fifo.npy', f.fifo]] as const) {
    rmSync(npy(name), { force: true });
    symlinkSync(target, npy(name));
  }
  const npyHeader = (dict: string, headerLength = dict.length + 1) => {
    const head = Buffer.alloc(10);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
    head.writeUInt16LE(headerLength, 8);
    return Buffer.concat([head, Buffer.from(`${dict}\n`, 'latin1')]);
  };
  writeFileSync(npy('text.npy'), 'a cat');
  writeFileSync(npy('header-past-end.npy'), npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 16, 16), }", 60000));
  writeFileSync(npy('shape-lie.npy'), Buffer.concat([npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 16, 16), }"), Buffer.alloc(8)]));
  writeFileSync(npy('huge-shape.npy'), npyHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 99999999999999999999, 16), }"));
  writeFileSync(npy('pickle.npy'), npyHeader("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"));
  writeFileSync(npy('code.npy'), npyHeader("__import__('os').system('touch /tmp/pwned')"));
  for (const [name, says] of [
    ['missing.npy', /--latents: cannot read .*: no such file/],
    ['dir.npy', /--latents: cannot read .*: it is a folder, not a file/],
    ['zero.npy', /--latents: cannot read .*: it is a device, not a regular file/],
    ['fifo.npy', /--latents: cannot read .*: it is a named pipe \(FIFO\), not a regular file/],
    ['text.npy', /not a \.npy file/],
    ['header-past-end.npy', /header is .*bytes; numpy writes at most|cut short/],
    ['shape-lie.npy', /needs 4096 bytes of data; the file has 8/],
    ['huge-shape.npy', /not whole numbers|needs/],
    ['pickle.npy', /dtype '\|O' is not float32 or float64/],
    ['code.npy', /not a dict/],
  ] as const) {
    const o = out();
    add({ group: 'latents', name: `txt2img --latents ${name}`, argv: ['txt2img', 'x', ...run, '--latents', npy(name), '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
  }
  add({ group: 'latents', name: 'txt2img --latents a.png', argv: ['txt2img', 'x', ...run, '--latents', f.valid], status: 2, stderr: /--latents must name a \.npy file/ });
  for (const [name, argv, says] of [
    ['-o a.png', ['invert', 'x', ...run, '-i', f.valid, '-o', join(root, 'inv.png')], /-o\/--output must name a \.npy file/],
    ['no -o', ['invert', 'x', ...run, '-i', f.valid], /required option '-o, --output <file\.npy>' not specified/],
    ['--sampler', ['invert', 'x', ...run, '-i', f.valid, '--sampler', 'euler', '-o', join(root, 'inv-never.npy')], /unknown option '--sampler'/],
  ] as const) {
    add({ group: 'latents', name: `invert ${name}`, argv: [...argv], status: 2, stderr: says });
  }

  // ---- watermark ---------------------------------------------------------------------------------------------
  for (const [name, argv, says] of [
    ['embed --bits 01x', ['watermark', 'embed', f.valid, '-o', join(root, 'wm.png'), '--bits', '01x'], /0s and 1s/],
    ['embed --text and --bits', ['watermark', 'embed', f.valid, '-o', join(root, 'wm.png'), '--text', 'a', '--bits', '01'], /not both/],
    ['embed --text ""', ['watermark', 'embed', f.valid, '-o', join(root, 'wm.png'), '--text', ''], /cannot be empty/],
    ['embed to .jpg', ['watermark', 'embed', f.valid, '-o', join(root, 'wm.jpg')], /only \.png output/],
    ['embed a 32x32 picture', ['watermark', 'embed', f.valid, '-o', join(root, 'wm.png')], /32x32/],
    ['detect --bits 0x10', ['watermark', 'detect', f.valid, '--bits', '0x10'], /--bits must be a whole number/],
    ['detect --bits 70000', ['watermark', 'detect', f.valid, '--bits', '70000'], /--bits must be a whole number from 1 to 65536/],
    ['detect --channel-order grb', ['watermark', 'detect', f.valid, '--channel-order', 'grb'], /--channel-order must be one of/],
    ['no subcommand', ['watermark', 'stamp'], /unknown command 'stamp'/],
  ] as const) {
    add({ group: 'watermark', name: `watermark ${name}`, argv: [...argv], status: 2, stderr: says });
  }

  // ---- build manifests: diffuse build in a project folder --------------------------------------------------
  const manifests: [string, string, RegExp][] = [
    ['an output path that climbs out', 'outputs:\n  ../x.png: { prompt: a, seed: 1 }\n', /is outside the project/],
    ['an absolute output path', 'outputs:\n  /tmp/x.png: { prompt: a, seed: 1 }\n', /absolute/],
    ['an input outside the project', 'outputs:\n  x.png: { command: img2img, initImage: ../../etc/passwd, prompt: a, seed: 1 }\n', /is outside the project/],
    ['a misspelt option', 'outputs:\n  x.png: { prompt: a, seed: 1, cfg-scale: 7 }\n', /unknown option 'cfg-scale' \(did you mean 'cfgScale'\?\)/],
    ['a misspelt top key', 'output:\n  x.png: { prompt: a, seed: 1 }\n', /unknown key 'output' at the top/],
    ['a cycle in vars', 'vars: { a: "{{b}}", b: "{{a}}" }\noutputs:\n  x.png: { prompt: "{{a}}", seed: 1 }\n', /a -> b -> a|b -> a -> b/],
    ['a template of no variable', 'outputs:\n  x.png: { prompt: "{{nope}}", seed: 1 }\n', /nope/],
    ['no seed', 'outputs:\n  x.png: { prompt: a }\n', /no seed/],
    ['a .gif output', 'outputs:\n  x.gif: { prompt: a, seed: 1 }\n', /must end in \.png, \.jpg, \.webp or \.avif/],
    ['duplicate keys', 'outputs:\n  x.png: { prompt: a, seed: 1 }\n  x.png: { prompt: b, seed: 2 }\n', /duplicate|duplicated/i],
    ['a machine option', 'outputs:\n  x.png: { prompt: a, seed: 1, threads: 2 }\n', /'threads' is not taken in a manifest: pass --threads/],
    ['a refiner on inpaint', 'outputs:\n  x.png: { command: inpaint, refiner: ./r, prompt: a, seed: 1 }\n', /'refiner' is not an option of inpaint/],
    ['a VAE that is not there', `outputs:\n  x.png: { model: ${JSON.stringify(TINY_SD)}, vae: ./no-such-vae, prompt: a, seed: 1 }\n`, /--vae .*no-such-vae: no such file or folder/],
  ];
  for (const [name, yaml, says] of manifests) {
    const project = join(root, 'build', String(n++));
    add({ group: 'build', name: `build: ${name}`, argv: ['build', '-q'], cwd: project, status: 2, stderr: says, watch: [project], keep: ['assets.yaml'], setup: () => {
      mkdirSync(project, { recursive: true });
      writeFileSync(join(project, 'assets.yaml'), yaml);
    } });
  }

  // ---- X/Y/Z plots: --xyz axes ---------------------------------------------------------------------------------
  for (const [name, command, xyz, says] of [
    ['an unknown option', 'txt2img', 'stpes=1,2', /--xyz axis X: unknown option 'stpes'/],
    ['a value its parser refuses', 'img2img', 'strength=0.5,1.5', /--xyz strength: strength must be a number from 0 to 1 \(got '1\.5'\)/],
    ['an empty list', 'txt2img', 'cfg=', /--xyz cfg: an empty value/],
    ['a range past the tile limit', 'inpaint', 'seed=0-4294967295', /at most 256 images/],
    ['four axes', 'txt2img', 'steps=1;cfg=2;seed=3;eta=1', /4 axes; at most 3/],
    ['a run option as an axis', 'txt2img', 'output=a.png,b.png', /output cannot be an axis/],
    ['on outpaint', 'outpaint', 'steps=1,2', /unknown option '--xyz'/],
  ] as const) {
    const o = out();
    add({ group: 'xyz', name: `${command} --xyz ${name}`, argv: [command, 'a cat', ...run, ...imageArgs[command]!, '--xyz', xyz, '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
  }

  // ---- upscale ----------------------------------------------------------------------------------------------
  const upOut = out();
  const up = (...more: string[]) => ['upscale', f.valid, '--model', UPSCALER, '-q', '-o', join(upOut, 'up.png'), ...more];
  const junkGraph = join(root, 'junk.onnx');
  writeFileSync(junkGraph, 'not an ONNX graph');
  const wide = join(root, 'wide-2100.png');
  writeFileSync(wide, bombPng(2100, 8, 8));
  for (const [name, argv, status, says] of [
    ['--tile smaller than twice the overlap', up('--tile', '16', '--tile-overlap', '9'), 2, /--tile 16 is smaller than twice --tile-overlap 9/],
    ['--tile 4', up('--tile', '4', '--tile-overlap', '0'), 2, /--tile 4 is too small/],
    ['--tile 0x10', up('--tile', '0x10'), 2, /--tile must be a whole number from 0 to 8192/],
    ['--tile-overlap -1', up('--tile-overlap', '-1'), 2, /--tile-overlap must be a whole number/],
    ['--scale 0', up('--scale', '0'), 2, /--scale must be a number from 0\.05 to 8/],
    ['--scale 9', up('--scale', '9'), 2, /--scale must be a number from 0\.05 to 8/],
    ['--scale NaN', up('--scale', 'NaN'), 2, /--scale must be a number/],
    ['--channel-order grb', up('--channel-order', 'grb'), 2, /--channel-order must be one of rgb, bgr/],
    ['-o to .jpg', ['upscale', f.valid, '--model', UPSCALER, '-o', join(upOut, 'up.jpg')], 2, /-o\/--output must name a \.png file/],
    ['an output beyond 16384 pixels', ['upscale', wide, '--model', UPSCALER, '-q', '--scale', '8', '-o', join(upOut, 'up.png')], 2, /would be 16800x64; at most 16384x16384 is written/],
    ['--model an unknown id', up('--model', 'esrgan-9000'), 2, /--model esrgan-9000: not an upscaler of the registry \(realesrgan-x4plus, .*\) nor an existing \.onnx file/],
    ['--model a VAE decoder', up('--model', join(TINY_SD, 'vae_decoder', 'model.onnx')), 2, /is not an image upscaler: its input 'latent_sample' has 4 channels, not 3/],
    ['--model a UNet', up('--model', join(TINY_SD, 'unet', 'model.onnx')), 2, /is not an image upscaler: it has 3 inputs/],
    ['--model a file that is not a graph', up('--model', junkGraph), 1, /cannot load .*junk\.onnx/],
    ['--device tpu', up('--device', 'tpu'), 2, /--device must be one of/],
  ] as const) {
    add({ group: 'upscale', name: `upscale ${name}`, argv: [...argv], status, stderr: says, watch: [upOut] });
  }

  // ---- img2img --sd-upscale -------------------------------------------------------------------------------------
  for (const [name, more, says] of [
    ['overlap of half a tile', ['--sd-upscale', '2', '--sd-upscale-overlap', '16'], /SD upscale overlap must be a whole number below half the 32x32 tile \(got 16\)/],
    ['overlap 300', ['--sd-upscale', '2', '--sd-upscale-overlap', '300'], /--sd-upscale-overlap must be a whole number from 0 to 256/],
    ['scale 9', ['--sd-upscale', '9'], /--sd-upscale must be a number from 1 to 8/],
    ['an upscaler that is a UNet', ['--sd-upscale', '2', '--sd-upscale-overlap', '8', '--sd-upscale-upscaler', join(TINY_SD, 'unet', 'model.onnx')], /is not an image upscaler: it has 3 inputs/],
    ['a picture smaller than a tile', ['--sd-upscale', '1', '--sd-upscale-overlap', '8', '--width', '64', '--height', '64'], /the upscaled picture is 32x32, smaller than the 64x64 tiles/],
  ] as const) {
    const o = out();
    add({ group: 'sd-upscale', name: `img2img --sd-upscale ${name}`, argv: ['img2img', 'a cat', ...run, '-i', f.valid, '--width', '32', '--height', '32', ...more, '-o', join(o, 'x.png')], status: 2, stderr: says, watch: [o] });
  }

  // ---- img2txt --------------------------------------------------------------------------------------------------
  const interrogate = join(FIXTURES, 'tiny-interrogate');
  const terms = (name: string) => join(root, 'img2txt-terms', name);
  mkdirSync(terms('devices'), { recursive: true });
  rmSync(terms('devices/zero.txt'), { force: true });
  symlinkSync('/dev/zero', terms('devices/zero.txt'));
  const img2txt = ['img2txt', f.valid, '--blip', join(interrogate, 'blip'), '--clip', join(interrogate, 'clip'), '--threads', '1'];
  for (const [name, more, says] of [
    ['--terms a file', ['--terms', join(interrogate, 'terms', 'artists.txt')], /term lists folder not found: .*artists\.txt/],
    ['--terms with only /dev/zero as a list', ['--terms', terms('devices')], /no term lists \(\*\.txt\) in /],
  ] as const) {
    add({ group: 'img2txt', name: `img2txt ${name}`, argv: [...img2txt, ...more], status: 2, stderr: says });
  }

  // ---- img2txt --blip: Hub BLIP folders converted on first use ----------------------------------------------------
  // Each in its own cache, which must hold no converted folder afterwards (hashes.json remembers the file's hash).
  // The declared sizes are refused from the config and the safetensors header, before any tensor is allocated:
  // run in a child whose V8 heap is capped at 256 MB.
  const blip = (name: string) => join(root, 'img2txt-blip', name);
  const vision = (c: Record<string, unknown>) => c.vision_config as Record<string, unknown>;
  const text = (c: Record<string, unknown>) => c.text_config as Record<string, unknown>;
  const absurdShape = (bytes: Buffer): Buffer =>
    editedHeader(bytes, (header) => void (header['vision_model.embeddings.patch_embedding.weight']!.shape = [2 ** 31, 2 ** 31]));
  for (const [name, edit, says, hashed] of [
    ['model.safetensors cut in half', { weights: (b: Buffer) => b.subarray(0, b.length >> 1) }, /model\.safetensors is not a valid safetensors file: tensor '.*' ends at byte \d+ of a \d+-byte data section \(truncated file\?\)/, true],
    ['config.json of a CLIP model', { config: () => ({ model_type: 'clip', architectures: ['CLIPModel'], text_config: { hidden_size: 8 } }) }, /config\.json has no vision_config: it is not a BlipForConditionalGeneration config/, false],
    ['config.json not JSON', { config: () => '{"vision_config": ' }, /config\.json: not valid JSON/, false],
    ['config.json declaring a 2^24-wide vision tower over 2^20-pixel pictures', { config: (c: Record<string, unknown>) => ({ ...c, vision_config: { ...vision(c), hidden_size: 12 * 2 ** 24, image_size: 32 * 2 ** 20 } }) }, /patch_embedding\.weight has shape \[8, 3, 32, 32\], expected \[201326592, 3, \?, \?\]/, true],
    ['config.json declaring a 2^40-token vocabulary', { config: (c: Record<string, unknown>) => ({ ...c, text_config: { ...text(c), vocab_size: 2 ** 40, max_position_embeddings: 2 ** 40 } }) }, /word_embeddings\.weight has shape \[\d+, 8\], expected \[1099511627776, 8\]/, true],
    ['a header declaring a 2^31 x 2^31 tensor', { weights: absurdShape }, /is not a valid safetensors file: tensor 'vision_model\.embeddings\.patch_embedding\.weight' has an absurd shape \[2147483648, 2147483648\]/, true],
  ] as const) {
    const dir = blip(name.replace(/\W+/g, '-'));
    const home = `${dir}-home`;
    add({
      group: 'img2txt',
      name: `img2txt --blip, a BLIP folder: ${name}`,
      argv: ['img2txt', f.valid, '--blip', dir, '--clip', join(interrogate, 'clip'), '--threads', '1'],
      status: 2,
      // a line saying the weights are being hashed comes before the error when they were
      ...(hashed ? { stderr: new RegExp(`^hashing [\\d.]+ kB\\n.*${says.source}`), lines: 2 } : { stderr: says }),
      env: { DIFFUSE_HOME: home, NODE_OPTIONS: '--max-old-space-size=256' },
      spawn: true,
      setup: () => void (rmSync(dir, { recursive: true, force: true }), rmSync(home, { recursive: true, force: true }), brokenBlip(dir, edit)),
      watch: [home],
      keep: hashed ? ['converted/hashes.json'] : [],
    });
  }
  return cases;
}
