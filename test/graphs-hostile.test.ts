import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scratch } from './helpers/scratch.js';
import { openWeightFile } from '../src/graphs/checkpoint-store.js';
import { CheckpointError } from '../src/graphs/errors.js';
import { diffuse } from './helpers/cli.js';
import { FIXTURES, readJson } from './helpers/fixtures.js';
import { checkpointBytes, writeCheckpoint, type Recipe } from './helpers/synthetic-checkpoint.js';

/**
 * Files that are not what they claim: each is refused in one line naming the file (exit 2, a bad
 * user file), before anything runs, and leaves nothing behind — no converted folder in the cache,
 * no -o folder, no half-written temporary folder. The safetensors files break one rule each of
 * the format; the reference library's verdict on each (tools/make_hostile_checkpoints.py) is the
 * rule diffuse's reader is held to.
 */

const DIR = join(FIXTURES, 'graphs-hostile');
const verdicts = readJson<{ marker: string; safetensors: Record<string, string> }>(join(DIR, 'verdicts.json'));

/** Runs `diffuse convert` into a fresh cache and an -o folder; returns what it printed and left. */
function convertRefused(file: string): { stderr: string; left: string[] } {
  const home = tempDir('diffuse-hostile-home-');
  const out = tempDir('diffuse-hostile-out-');
  const env = { DIFFUSE_HOME: home };
  const results = [diffuse(['convert', file, '-q'], { env }), diffuse(['convert', file, '-q', '-o', join(out, 'model')], { env })];
  for (const r of results) {
    assert.is(r.status, 2, `exit status ${r.status}: ${r.stderr}`);
    assert.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr, /error:/);
    assert.is(r.stdout, '');
  }
  const converted = join(home, 'converted');
  const left = [...(existsSync(converted) ? readdirSync(converted).filter((n) => n !== 'hashes.json') : []), ...readdirSync(out)];
  return { stderr: results[0]!.stderr, left };
}

const S = suite('hostile and incomplete checkpoints');

const tempDir = scratch(S);

for (const [name, verdict] of Object.entries(verdicts.safetensors)) {
  const said = verdict === 'ok' ? 'accepted' : `refused (${verdict.replace(/^.*: /, '')})`;
  S(`${name}: ${said} by the safetensors library, and by diffuse's reader`, async () => {
    let refused: unknown;
    try {
      await (await openWeightFile(join(DIR, name))).close();
    } catch (err) {
      refused = err;
    }
    if (verdict === 'ok') {
      assert.is(refused, undefined, String(refused));
      // Valid safetensors, but no model: refused as that, by the converter.
      assert.match(convertRefused(join(DIR, name)).stderr, /not a complete Stable Diffusion checkpoint/);
      return;
    }
    assert.instance(refused, CheckpointError);
    const { stderr, left } = convertRefused(join(DIR, name));
    assert.match(stderr, new RegExp(`${name.replace('.', '\\.')} is not a valid safetensors file`));
    assert.equal(left, []);
  });
}

S('a pickle that would call os.system is refused before anything runs', () => {
  const { stderr, left } = convertRefused(join(DIR, 'evil.ckpt'));
  assert.match(stderr, /evil\.ckpt: .*refusing to load: the file references posix\.system/);
  assert.not.ok(existsSync(verdicts.marker), 'the payload ran');
  assert.equal(left, []);
});

S('a legacy (pre-1.6) torch pickle is refused with what to do', () => {
  assert.match(convertRefused(join(DIR, 'legacy.ckpt')).stderr, /legacy \(pre-1\.6\) torch pickle.*convert it to \.safetensors/);
});

const edited = (edit: (r: Recipe) => Recipe, note: string) => {
  const dir = tempDir();
  return writeCheckpoint(dir, 'mini', `${note}.safetensors`, edit);
};

S('a checkpoint without its VAE is refused, naming what is missing', () => {
  const file = edited((r) => ({ ...r, tensors: r.tensors.filter(([k]) => !k.startsWith('first_stage_model.')) }), 'no-vae');
  const { stderr, left } = convertRefused(file);
  assert.match(stderr, /no-vae\.safetensors: not a complete Stable Diffusion checkpoint: missing the VAE encoder \(first_stage_model\.encoder\.\*\), the VAE decoder/);
  assert.equal(left, []);
});

S('a weight stored as I32 is refused (only F16, BF16 and F32 weights are read), and nothing is left', () => {
  const file = edited((r) => ({ ...r, tensors: r.tensors.map((t) => (t[0] === 'model.diffusion_model.out.2.bias' ? [t[0], 'I32', t[2], 'arange', 0, 0] : t)) }), 'int-weight');
  const { stderr, left } = convertRefused(file);
  assert.match(stderr, /tensor model\.diffusion_model\.out\.2\.bias is I32; only F16, BF16 and F32 weights are read/);
  assert.equal(left, []);
});

S('a tensor of the wrong shape is refused before a byte is written', () => {
  const file = edited((r) => ({ ...r, tensors: r.tensors.map((t) => (t[0] === 'model.diffusion_model.out.2.bias' ? [t[0], t[1], [5], t[3], t[4], t[5]] : t)) }), 'wrong-shape');
  const { stderr, left } = convertRefused(file);
  assert.match(stderr, /tensor model\.diffusion_model\.out\.2\.bias has shape \[5\], expected \[4\]/);
  assert.equal(left, []);
});

S('a file with a stray SDXL refiner encoder key (bigG alone, but no label_emb nor text_projection) is refused in one line, naming what is missing', () => {
  const file = edited((r) => ({ ...r, tensors: [...r.tensors, ['conditioner.embedders.0.model.ln_final.bias', 'F16', [4], 'uniform', -3, 0]] }), 'refiner');
  const { stderr, left } = convertRefused(file);
  assert.match(stderr, /not a complete SDXL refiner checkpoint: missing the UNet's label_emb \(SDXL's added conditioning\), bigG's text_projection/);
  assert.equal(left, []);
});

S("an SDXL checkpoint without the UNet's label_emb is refused, naming it", () => {
  const dir = tempDir();
  const recipe = readJson<Recipe>(join(FIXTURES, 'sdxl-checkpoint', 'sdxl-tiny.recipe.json.gz'));
  const file = join(dir, 'no-label-emb.safetensors');
  writeFileSync(file, checkpointBytes({ ...recipe, tensors: recipe.tensors.filter(([k]) => !k.includes('.label_emb.')) }));
  const { stderr, left } = convertRefused(file);
  assert.match(stderr, /not a complete SDXL checkpoint: missing the UNet's label_emb/);
  assert.equal(left, []);
});

S.run();
