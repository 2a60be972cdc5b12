import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readGenerationMetadata } from '../src/image/metadata.js';
import { TINY_SD, diffuse, tempDir } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { LORA_FIXTURES, networkFixtures, safetensorsBytes } from './helpers/lora-fixtures.js';

/**
 * `<lora:…>` and `<hypernet:…>` in prompts through the CLI on tiny-sd: the folders, A1111's tag arguments,
 * the tags left out of what the text encoder reads but kept in the infotext with "Lora hashes", --from
 * checking the hashes, and one-line refusals.
 */
const common = ['--model', TINY_SD, '--steps', '2', '--seed', '21', '--quiet', '--sampler', 'euler'];
const hashes = networkFixtures().hashes;

function folders(): { dir: string; loras: string; hypernets: string; flags: string[] } {
  const dir = tempDir();
  const loras = join(dir, 'loras', 'styles');
  const hypernets = join(dir, 'hypernetworks');
  mkdirSync(loras, { recursive: true });
  mkdirSync(hypernets);
  copyFileSync(join(LORA_FIXTURES, 'tiny_kohya.safetensors'), join(loras, 'tiny_kohya.safetensors'));
  copyFileSync(join(LORA_FIXTURES, 'tiny_hyper.pt'), join(hypernets, 'tiny_hyper.pt'));
  return { dir, loras: join(dir, 'loras'), hypernets, flags: ['--lora-dir', join(dir, 'loras'), '--hypernetwork-dir', hypernets] };
}

async function pixels(file: string): Promise<Buffer> {
  return sharp(file).raw().toBuffer();
}

function parameters(file: string) {
  const meta = readGenerationMetadata(readFileSync(file));
  if (meta.kind !== 'a1111') throw new Error('no parameters');
  return meta.parameters;
}

test('tags load the networks, are not read as text, and are recorded with the LoRA hash', async () => {
  const { dir, flags } = folders();
  const run = (prompt: string, name: string) => {
    const r = diffuse(['txt2img', prompt, ...common, ...flags, '-o', join(dir, name)]);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stderr, '', 'no warning');
    return join(dir, name);
  };
  const plain = run('a red fox', 'plain.png');
  // Weight 0 loads nothing: the image equals the untagged prompt's, so the tag is not text the encoder sees.
  const zero = run('a red fox <lora:tiny_kohya:0>', 'zero.png');
  assert.ok((await pixels(zero)).equals(await pixels(plain)));
  const lora = run('a red fox <lora:tiny_kohya:0.8>', 'lora.png');
  assert.not.ok((await pixels(lora)).equals(await pixels(plain)));
  const te = run('a red fox <lora:tiny_kohya:0.8:0>', 'te-only.png');
  assert.not.ok((await pixels(te)).equals(await pixels(lora)), 'unet multiplier 0 differs from 0.8');
  const both = run('a red fox <lora:tiny_kohya:te=0.8:unet=0.8> <hypernet:tiny_hyper:0.8>', 'both.png');
  assert.not.ok((await pixels(both)).equals(await pixels(lora)));
  const p = parameters(lora);
  assert.is(p.prompt, 'a red fox <lora:tiny_kohya:0.8>');
  assert.is(p.extra['Lora hashes'], `tiny_kohya: ${hashes['tiny_kohya']}`);
  assert.match(readFileSync(lora, 'latin1'), /Lora hashes: "tiny_kohya: [0-9a-f]{12}"/);
  assert.is(parameters(plain).extra['Lora hashes'], undefined);

  // --from finds the files again and reproduces the image; another file under the same name is told apart by its hash.
  const again = diffuse(['txt2img', '--from', lora, '--model', TINY_SD, ...flags, '--quiet', '-o', join(dir, 'again.png')]);
  assert.is(again.status, 0, again.stderr);
  assert.is(again.stderr, '');
  assert.ok((await pixels(join(dir, 'again.png'))).equals(await pixels(lora)));
  const other = folders();
  writeFileSync(join(other.loras, 'styles', 'tiny_kohya.safetensors'), safetensorsBytes({
    'lora_unet_conv_in.lora_down.weight': { shape: [2, 4, 3, 3], values: new Float32Array(72).fill(0.01) },
    'lora_unet_conv_in.lora_up.weight': { shape: [32, 2, 1, 1], values: new Float32Array(64).fill(0.01) },
  }));
  const changed = diffuse(['txt2img', '--from', lora, '--model', TINY_SD, ...other.flags, '--quiet', '-o', join(dir, 'changed.png')]);
  assert.is(changed.status, 0, changed.stderr);
  assert.match(changed.stderr, new RegExp(`^warning: LoRA tiny_kohya here has hash [0-9a-f]{12}, the image was made with ${hashes['tiny_kohya']}`));
});

test('--prompts-file: prompts with other tags load the model again, each image as its own run makes it', async () => {
  const { dir, flags } = folders();
  const list = join(dir, 'prompts.txt');
  writeFileSync(list, 'a red fox <lora:tiny_kohya:0.8>\na red fox\n');
  const r = diffuse(['txt2img', '--prompts-file', list, ...common, ...flags, '-o', join(dir, 'many')]);
  assert.is(r.status, 0, r.stderr);
  const single = diffuse(['txt2img', 'a red fox <lora:tiny_kohya:0.8>', ...common, ...flags, '-o', join(dir, 'one.png')]);
  assert.is(single.status, 0, single.stderr);
  const made = readdirSync(join(dir, 'many')).sort();
  assert.is(made.length, 2);
  const tagged = made.find((f) => f.includes('lora'))!;
  assert.ok((await pixels(join(dir, 'many', tagged))).equals(await pixels(join(dir, 'one.png'))));
});

test('no folder, an unknown name, a bad weight, a LoRA for SDXL: exit 2, one line, nothing written', () => {
  const { dir, flags, loras } = folders();
  writeFileSync(join(loras, 'xl.safetensors'), safetensorsBytes({ 'lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': { shape: [2, 8], values: new Float32Array(16) } }));
  for (const [prompt, extra, pattern] of [
    ['a fox <lora:tiny_kohya:1>', [], /no --lora-dir is set/],
    ['a fox <hypernet:tiny_hyper>', [], /no --hypernetwork-dir is set/],
    ['a fox <lora:nope:1>', flags, /no LoRA named 'nope' in --lora-dir .* \(it has: tiny_kohya, xl\)/],
    ['a fox <hypernet:nope>', flags, /no hypernetwork named 'nope'/],
    ['a fox <lora:tiny_kohya:strong>', flags, /<lora:tiny_kohya:strong>: the weight 'strong' is not a number/],
    ['a fox <lora:xl:1>', flags, /made for SDXL/],
  ] as const) {
    const r = diffuse(['txt2img', prompt, ...common, ...extra, '-o', join(dir, 'out', 'x.png')]);
    assert.is(r.status, 2, `${prompt}: ${r.stderr}`);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, pattern);
  }
  assert.equal(readdirSync(dir).sort(), ['hypernetworks', 'loras']);
});

test('SDXL: an SDXL LoRA tag merges into tiny-sdxl and is recorded; an SD 1.x LoRA is refused in one line', async () => {
  const { dir, flags, loras } = folders();
  copyFileSync(join(FIXTURES, 'sdxl-lora', 'kohya_sdxl.safetensors'), join(loras, 'kohya_sdxl.safetensors'));
  const sdxl = ['--model', join(FIXTURES, 'tiny-sdxl'), '--steps', '2', '--seed', '21', '--quiet', '--sampler', 'euler', ...flags];
  const plain = diffuse(['txt2img', 'a red fox', ...sdxl, '-o', join(dir, 'plain.png')]);
  const lora = diffuse(['txt2img', 'a red fox <lora:kohya_sdxl:0.8>', ...sdxl, '-o', join(dir, 'lora.png')]);
  assert.is(lora.status, 0, lora.stderr);
  assert.is(lora.stderr, '', 'every key patches a layer');
  assert.not.ok((await pixels(join(dir, 'lora.png'))).equals(await pixels(join(dir, 'plain.png'))), plain.stderr);
  assert.match(parameters(join(dir, 'lora.png')).extra['Lora hashes'] ?? '', /^kohya_sdxl: [0-9a-f]{12}$/);
  const refused = diffuse(['txt2img', 'a fox <lora:tiny_kohya:1>', ...sdxl, '-o', join(dir, 'out', 'x.png')]);
  assert.is(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /LoRA tiny_kohya \(.*\) was made for SD 1\.x\/2\.x and this is an SDXL model; use an SDXL LoRA, or an SD 1\.x\/2\.x model$/m);
  assert.is(refused.stderr.trim().split('\n').length, 1, refused.stderr);
});

test.run();
