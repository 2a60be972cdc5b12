import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CheckpointError } from '../src/graphs/errors.js';
import { compvisAlias } from '../src/graphs/lora/lora-keys.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel, type LoadOptions } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { LORA_FIXTURES, type NetworkFixtures } from './helpers/lora-fixtures.js';
import { referenceRequest } from './helpers/reference-case.js';
import { scratch } from './helpers/scratch.js';

/**
 * SDXL LoRAs merged into tiny-sdxl's UNet and both text encoders (optimum's export) against diffusers'
 * StableDiffusionXLPipeline.load_lora_weights + fuse_lora (tools/make_sdxl_lora_refs.py): a kohya file
 * as sd-scripts saves SDXL LoRAs (SGM block names, lora_te1_/lora_te2_, LoCon convolutions) and a
 * diffusers/PEFT file (unet./text_encoder./text_encoder_2.). Final latents of a 4-step Euler txt2img
 * within the pipeline's 1e-5 of the largest value; multipliers 0.7-1, te and UNet apart.
 */
const LATENT_TOLERANCE = 1e-5;
const DIR = join(FIXTURES, 'sdxl-lora');
const BASE = join(FIXTURES, 'tiny-sdxl');
const fixtures = readJson<NetworkFixtures>(join(DIR, 'cases.json'));

const S = suite('SDXL LoRA merges = diffusers fuse_lora');
const tempDir = scratch(S);
let work = '';
S.before(() => {
  work = tempDir();
});

async function latents(options: Partial<LoadOptions> = {}): Promise<Float32Array> {
  const bundle = await loadModel(BASE, { device: 'cpu', graphCache: join(work, 'graphs'), ...options });
  try {
    const request = referenceRequest({ ...fixtures.cases[0]!, scheduler: fixtures.scheduler });
    return (await generate({ ...bundle, schedule: discreteSchedule(fixtures.scheduler.config) }, request)).latents;
  } finally {
    await bundle.release();
  }
}

function check(actual: Float32Array, file: string, name: string): void {
  const e = compare(actual, readF32(join(DIR, file)));
  assert.ok(e.relToMax < LATENT_TOLERANCE, `${name}: final latents off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
}

for (const c of fixtures.cases) {
  S(`${c.name}${c.lora ? `: te ${c.te}, UNet ${c.unet}` : ''}`, async () => {
    const warnings: string[] = [];
    const loras = c.lora ? [{ path: join(DIR, `${c.lora}.safetensors`), te: c.te!, unet: c.unet! }] : [];
    const bundleLatents = await latents({ loras, onWarning: (m) => warnings.push(m) });
    check(bundleLatents, c.final_latents.file, c.name);
    assert.equal(warnings, [], 'every key of the file patches a layer');
    if (c.lora) {
      const none = readF32(join(DIR, fixtures.cases.find((k) => k.name === 'none')!.final_latents.file));
      assert.ok(compare(bundleLatents, none).relToMax > 1e-3, `${c.name} changes the image`);
    }
  });
}

S("the bundle records each SDXL LoRA with A1111's hash (SHA-256 after the header)", async () => {
  const bundle = await loadModel(BASE, { device: 'cpu', graphCache: join(work, 'graphs'), loras: ['kohya_sdxl', 'peft_sdxl'].map((n) => ({ path: join(DIR, `${n}.safetensors`), te: 1, unet: 1 })) });
  await bundle.release();
  assert.equal(Object.fromEntries(bundle.loras.map((l) => [l.name, l.hash])), fixtures.hashes);
});

S("SGM names of an SDXL UNet's modules: the inverse of diffusers' _maybe_map_sgm_blocks_to_diffusers", () => {
  const sdxl = { layersPerBlock: 2, attentionUpBlocks: new Set([0, 1]) };
  for (const [from, to] of [
    ['lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_attn1_to_q', 'lora_unet_input_blocks_5_1_transformer_blocks_0_attn1_to_q'],
    ['lora_unet_down_blocks_2_resnets_0_conv1', 'lora_unet_input_blocks_7_0_in_layers_2'],
    ['lora_unet_down_blocks_1_downsamplers_0_conv', 'lora_unet_input_blocks_6_0_op'],
    ['lora_unet_mid_block_attentions_0_proj_out', 'lora_unet_middle_block_1_proj_out'],
    ['lora_unet_up_blocks_0_attentions_2_transformer_blocks_9_ff_net_2', 'lora_unet_output_blocks_2_1_transformer_blocks_9_ff_net_2'],
    ['lora_unet_up_blocks_0_upsamplers_0_conv', 'lora_unet_output_blocks_2_2_conv'],
    ['lora_unet_up_blocks_1_upsamplers_0_conv', 'lora_unet_output_blocks_5_2_conv'],
    ['lora_unet_up_blocks_2_resnets_2_conv_shortcut', 'lora_unet_output_blocks_8_0_skip_connection'],
    ['lora_unet_add_embedding_linear_2', 'lora_unet_label_emb_0_2'],
  ] as const) {
    assert.is(compvisAlias(from, sdxl), to, from);
  }
});

S('an SD 1.x LoRA on SDXL and an SDXL LoRA on SD 1.x are refused in one line', async () => {
  for (const [model, path, pattern] of [
    [BASE, join(LORA_FIXTURES, 'tiny_kohya.safetensors'), /^LoRA tiny_kohya \(.*\) was made for SD 1\.x\/2\.x and this is an SDXL model; use an SDXL LoRA, or an SD 1\.x\/2\.x model$/],
    [TINY_SD, join(DIR, 'kohya_sdxl.safetensors'), /^LoRA kohya_sdxl \(.*\) was made for SDXL and this is an SD 1\.x\/2\.x model; use an SD 1\.x\/2\.x LoRA, or an SDXL model$/],
    [TINY_SD, join(DIR, 'peft_sdxl.safetensors'), /^LoRA peft_sdxl \(.*\) was made for SDXL and this is an SD 1\.x\/2\.x model/],
  ] as const) {
    const err = await loadModel(model, { device: 'cpu', graphCache: join(work, 'graphs-refused'), loras: [{ path, te: 1, unet: 1 }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.instance(err, CheckpointError);
    assert.match((err as Error).message, pattern);
  }
});

S.run();
