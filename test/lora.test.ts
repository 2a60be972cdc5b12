import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointError } from '../src/graphs/errors.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type LoadOptions } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { compare, readF32 } from './helpers/fixtures.js';
import { LORA_FIXTURES, convertedSd1, networkFixtures, safetensorsBytes, type NetworkCase } from './helpers/lora-fixtures.js';
import { referenceRequest } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';
import { TINY_SD } from './helpers/cli.js';

/**
 * LoRA and LyCORIS files merged into a model's graphs at load (src/graphs/lora/) — a converted model, and
 * tiny-sd, optimum's export (MatMul weights without module names, Gemm time projections) — against
 * diffusers' load_lora_weights + fuse_lora (kohya LoRA with LoCon layers, diffusers/PEFT keys) and a torch
 * merge by LyCORIS' definitions (LoHa, LoKr, CP-core LoRA) on the same weights: final latents of a 4-step
 * Euler txt2img within the pipeline's 1e-5 of the largest value. Multipliers 0.7-1, and te and UNet apart.
 */
const LATENT_TOLERANCE = 1e-5;
const fixtures = networkFixtures();

const S = suite('LoRA merges = diffusers fuse_lora / LyCORIS merges');
const tempDir = scratch(S);
let work = '';
let model = '';
S.before(async () => {
  work = tempDir();
  model = await convertedSd1(work);
});

async function run(c: NetworkCase, options: Partial<LoadOptions> = {}): Promise<Float32Array> {
  const bundle = await loadModel(c.model === 'tiny-sd' ? TINY_SD : model, { device: 'cpu', fuseAttention: true, graphCache: join(work, 'graphs'), ...options });
  try {
    const request = referenceRequest({ ...c, scheduler: fixtures.scheduler });
    return (await generate({ ...bundle, schedule: discreteSchedule(fixtures.scheduler.config) }, request)).latents;
  } finally {
    await bundle.release();
  }
}

function check(actual: Float32Array, c: NetworkCase): number {
  const e = compare(actual, readF32(join(LORA_FIXTURES, c.final_latents.file)));
  assert.ok(e.relToMax < LATENT_TOLERANCE, `${c.name}: final latents off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
  return e.relToMax;
}

for (const c of fixtures.cases.filter((k) => k.lora)) {
  S(`${c.name}: te ${c.te}, UNet ${c.unet}`, async () => {
    const warnings: string[] = [];
    const loras = [{ path: join(LORA_FIXTURES, `${c.lora}.safetensors`), te: c.te!, unet: c.unet! }];
    check(await run(c, { loras, onWarning: (m) => warnings.push(m) }), c);
    assert.equal(warnings, [], 'every key of the file patches a layer');
  });
}

S('the references without a LoRA differ from each with one (the cases can fail)', async () => {
  for (const none of fixtures.cases.filter((c) => c.name.endsWith('none'))) {
    const plain = await run(none);
    check(plain, none);
    for (const c of fixtures.cases.filter((k) => k.lora && k.model === none.model)) {
      assert.ok(compare(plain, readF32(join(LORA_FIXTURES, c.final_latents.file))).relToMax > 1e-3, `${c.name} changes the image`);
    }
  }
});

S('a merge is cached per combination: the same LoRA and weights load the same edited graphs', async () => {
  const c = fixtures.cases.find((k) => k.name === 'kohya_locon-0.8')!;
  const entries = () => readdirSync(join(work, 'graphs')).filter((d) => d.includes('lora')).sort();
  const before = entries();
  const loras = [{ path: join(LORA_FIXTURES, 'kohya_locon.safetensors'), te: 0.8, unet: 0.8 }];
  check(await run(c, { loras }), c);
  assert.equal(entries(), before);
});

S('keys that patch nothing are skipped and reported in one warning; bundle records the A1111 hash', async () => {
  const file = join(work, 'extra.safetensors');
  const down = { shape: [2, 128], values: new Float32Array(256).fill(0.01) };
  const up = { shape: [128, 2], values: new Float32Array(256).fill(0.01) };
  writeFileSync(file, safetensorsBytes({
    'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': down,
    'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight': up,
    'lora_te_text_model_encoder_layers_9_self_attn_q_proj.lora_down.weight': down,
    'lora_te_text_model_encoder_layers_9_self_attn_q_proj.lora_up.weight': up,
    'something_else': { shape: [1], values: [1] },
  }));
  const warnings: string[] = [];
  const bundle = await loadModel(model, { device: 'cpu', graphCache: join(work, 'graphs'), loras: [{ path: file, name: 'extra', te: 1, unet: 1 }], onWarning: (m) => warnings.push(m) });
  await bundle.release();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^LoRA extra: 3 keys skipped — no such layer in this model, or a kind diffuse does not merge \(IA3, OFT, GLoRA\) — e\.g\. something_else, lora_te_text_model_encoder_layers_9/);
  assert.equal(bundle.loras.map((l) => l.name), ['extra']);
  assert.match(bundle.loras[0]!.hash, /^[0-9a-f]{12}$/);
});

S("A1111's Lora hash is the addnet hash (SHA-256 after the header)", async () => {
  const bundle = await loadModel(model, { device: 'cpu', graphCache: join(work, 'graphs'), loras: ['kohya_locon', 'peft', 'lycoris'].map((n) => ({ path: join(LORA_FIXTURES, `${n}.safetensors`), te: 1, unet: 1 })) });
  await bundle.release();
  assert.equal(Object.fromEntries(bundle.loras.map((l) => [l.name, l.hash])), Object.fromEntries(['kohya_locon', 'peft', 'lycoris'].map((n) => [n, fixtures.hashes[n]])));
});

S('a LoRA of another family is refused in one line, before anything is cached', async () => {
  const wide = join(work, 'sd2like.safetensors');
  writeFileSync(wide, safetensorsBytes({
    'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': { shape: [2, 1024], values: new Float32Array(2048) },
    'lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight': { shape: [1024, 2], values: new Float32Array(2048) },
  }));
  const xl = join(work, 'xl.safetensors');
  writeFileSync(xl, safetensorsBytes({ 'lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': { shape: [2, 8], values: new Float32Array(16) } }));
  const v2 = join(work, 'v2.safetensors');
  writeFileSync(v2, safetensorsBytes({ 'lora_unet_conv_in.lora_down.weight': { shape: [2, 4, 3, 3], values: new Float32Array(72) } }, { ss_v2: 'True' }));
  for (const [path, pattern] of [
    [wide, /another model family/],
    [xl, /made for SDXL/],
    [v2, /made for SD 2\.x and this is an SD 1\.x model/],
  ] as const) {
    const err = await loadModel(model, { device: 'cpu', graphCache: join(work, 'graphs-refused'), loras: [{ path, te: 1, unet: 1 }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, CheckpointError);
    assert.match((err as Error).message, pattern);
    assert.not.match((err as Error).message, /\n/);
  }
});

S.run();
