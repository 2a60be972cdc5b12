import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { manifestAssets } from '../src/build/assets.js';
import { readManifest } from '../src/build/manifest.js';
import { paramsHash } from '../src/build/params.js';
import { assembleSdxl } from './helpers/assemble-model.js';
import { FIXTURES } from './helpers/fixtures.js';
import { TINY_SD, diffuse } from './helpers/cli.js';
import { scratch } from './helpers/scratch.js';

/** diffuse build with a VAE and a refiner named in the manifest, and the network files a prompt names counted in its parameters hash. */
const test = suite('build parts');
const temp = scratch(test);

test('vae: the output equals txt2img --vae byte for byte; other VAE weights make it stale', () => {
  const dir = temp();
  cpSync(TINY_SD, join(dir, 'tiny-sd'), { recursive: true });
  mkdirSync(join(dir, 'vae'));
  for (const part of ['vae_decoder', 'vae_encoder']) cpSync(join(TINY_SD, part), join(dir, 'vae', part), { recursive: true });
  writeFileSync(join(dir, 'assets.yaml'), 'outputs:\n  owl.png: { model: ./tiny-sd, vae: ./vae, prompt: an owl, seed: 5, steps: 3, sampler: euler }\n');
  let r = diffuse(['build', '-q'], { cwd: dir });
  assert.is(r.status, 0, r.stderr);
  r = diffuse(['txt2img', 'an owl', '-m', join(dir, 'tiny-sd'), '--vae', join(dir, 'vae'), '--seed', '5', '--steps', '3', '--sampler', 'euler', '-q', '-o', join(dir, 'alone.png')]);
  assert.is(r.status, 0, r.stderr);
  assert.equal(readFileSync(join(dir, 'owl.png')), readFileSync(join(dir, 'alone.png')));
  assert.is(diffuse(['build', '--check', '-q'], { cwd: dir }).status, 0);
  // Another graph where the decoder was (--check never loads it): the VAE's weights changed.
  copyFileSync(join(TINY_SD, 'vae_encoder', 'model.onnx'), join(dir, 'vae', 'vae_decoder', 'model.onnx'));
  r = diffuse(['build', '--check', '-q'], { cwd: dir });
  assert.is(r.status, 1, r.stderr);
  assert.is(r.stdout, 'stale owl.png: its settings, prompt or inputs changed\n');
});

test('refiner and refinerSwitch: the output equals txt2img --refiner --refiner-switch byte for byte', () => {
  const dir = temp();
  const refiner = assembleSdxl('tiny-sdxl-refiner');
  try {
    const base = join(FIXTURES, 'tiny-sdxl');
    writeFileSync(join(dir, 'assets.json'), JSON.stringify({ outputs: { 'fox.png': { model: base, refiner: refiner.dir, refinerSwitch: 0.5, prompt: 'a fox', seed: 9, steps: 4, sampler: 'euler', width: 32, height: 32 } } }));
    let r = diffuse(['build', '-q'], { cwd: dir });
    assert.is(r.status, 0, r.stderr);
    r = diffuse(['txt2img', 'a fox', '-m', base, '--refiner', refiner.dir, '--refiner-switch', '0.5', '--seed', '9', '--steps', '4', '--sampler', 'euler', '-W', '32', '-H', '32', '-q', '-o', join(dir, 'alone.png')]);
    assert.is(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(dir, 'fox.png')), readFileSync(join(dir, 'alone.png')));
  } finally {
    refiner.remove();
  }
});

test('the LoRA, hypernetwork and embedding files a prompt names are in the parameters hash; other files in those folders are not', async () => {
  const dir = temp();
  for (const folder of ['loras', 'hypernets', 'embeddings']) mkdirSync(join(dir, folder));
  const files = { lora: 'loras/style.safetensors', otherLora: 'loras/other.safetensors', hypernet: 'hypernets/ink.pt', embedding: 'embeddings/owlish.pt', negative: 'embeddings/blurry.pt', unused: 'embeddings/unused.pt' };
  for (const [i, f] of Object.values(files).entries()) writeFileSync(join(dir, f), `bytes ${i}`);
  writeFileSync(
    join(dir, 'assets.yaml'),
    `defaults: { loraDir: loras, hypernetworkDir: hypernets, embeddingsDir: embeddings, seed: 1 }\noutputs:\n  a.png: { prompt: "an owlish bird <lora:style:0.8> <hypernet:ink>", negativePrompt: blurry }\n`,
  );
  const [asset] = manifestAssets(await readManifest(join(dir, 'assets.yaml')), dir);
  const hash = () => paramsHash(asset!, dir);
  const before = await hash();
  for (const [name, f] of Object.entries(files)) {
    writeFileSync(join(dir, f), `edited ${name}`);
    const named = name !== 'otherLora' && name !== 'unused';
    assert.is((await hash()) !== before, named, `${f} ${named ? 'changes' : 'leaves'} the hash`);
    writeFileSync(join(dir, f), `bytes ${Object.keys(files).indexOf(name)}`);
  }
  assert.is(await hash(), before, 'the same bytes give the same hash');
});

test.run();
