import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compvisAlias, parseLoraKey } from '../src/graphs/lora/lora-keys.js';
import { formatInfotext, metadataParameters, parseInfotext, recordedSettings } from '../src/image/infotext.js';
import type { ImageMetadata } from '../src/image/image-metadata.js';
import { extractExtraNetworks, withoutExtraNetworks } from '../src/text/extra-networks.js';

/** A1111's extra-network tags (modules/extra_networks.py), LoRA key spellings, and the "Lora hashes" record. */

test("tags come out of the prompt as A1111's parse_prompt takes them", () => {
  const { prompt, tags } = extractExtraNetworks('a <lora:film grain:0.6> cat, <hypernet:anime> <lora:x:te=0.5:unet=1:dyn=4>, <notatag> <a:b=c=d>');
  assert.is(prompt, 'a  cat,  , <notatag> ');
  assert.equal(tags.map((t) => [t.kind, t.positional, t.named]), [
    ['lora', ['film grain', '0.6'], {}],
    ['hypernet', ['anime'], {}],
    ['lora', ['x'], { te: '0.5', unet: '1', dyn: '4' }],
    ['a', ['b=c=d'], {}],
  ]);
  assert.is(withoutExtraNetworks('x <lora:a:1> y'), 'x  y');
});

test('every LoRA key spelling names the same module in kohya terms', () => {
  const module = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q';
  for (const [key, part] of [
    [`${module}.lora_down.weight`, 'lora_down.weight'],
    [`${module}.alpha`, 'alpha'],
    [`${module}.hada_w1_a`, 'hada_w1_a'],
    ['unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight', 'lora_down.weight'],
    ['unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora.up.weight', 'lora_up.weight'],
    ['unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight', 'lora_down.weight'],
    ['base_model.model.unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight', 'lora_up.weight'],
  ] as const) {
    assert.equal(parseLoraKey(key), { module, part }, key);
  }
  assert.equal(parseLoraKey('text_encoder.text_model.encoder.layers.3.self_attn.out_proj.lora_linear_layer.down.weight'), {
    module: 'lora_te_text_model_encoder_layers_3_self_attn_out_proj',
    part: 'lora_down.weight',
  });
  assert.equal(parseLoraKey('unet.up_blocks.1.attentions.2.transformer_blocks.0.attn2.processor.to_out_lora.up.weight')?.module, 'lora_unet_up_blocks_1_attentions_2_transformer_blocks_0_attn2_to_out_0');
  assert.is(parseLoraKey('model.diffusion_model.input_blocks.0.0.weight'), undefined);
});

test("A1111's CompVis names of diffusers modules (convert_diffusers_name_to_compvis)", () => {
  for (const [from, to] of [
    ['lora_unet_down_blocks_1_attentions_1_proj_in', 'lora_unet_input_blocks_5_1_proj_in'],
    ['lora_unet_down_blocks_2_resnets_0_conv1', 'lora_unet_input_blocks_7_0_in_layers_2'],
    ['lora_unet_mid_block_resnets_1_time_emb_proj', 'lora_unet_middle_block_2_emb_layers_1'],
    ['lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_2', 'lora_unet_output_blocks_11_1_transformer_blocks_0_ff_net_2'],
    ['lora_unet_up_blocks_0_upsamplers_0_conv', 'lora_unet_output_blocks_2_1_conv'],
    ['lora_unet_down_blocks_0_downsamplers_0_conv', 'lora_unet_input_blocks_3_0_op'],
    ['lora_unet_time_embedding_linear_2', 'lora_unet_time_embed_2'],
    ['lora_unet_conv_out', 'lora_unet_out_2'],
  ] as const) {
    assert.is(compvisAlias(from), to, from);
  }
});

test('"Lora hashes" is written quoted as A1111 does and read back', () => {
  const m = { prompt: 'a <lora:grain:1>', negativePrompt: '', steps: 2, sampler: 'Euler', scheduleType: 'Automatic', cfgScale: 7, cfgRescale: 0, seed: 1, width: 8, height: 8, model: 'm', modelHash: 'abc', rng: 'cpu', seedMode: 'a1111', batchSize: 1, batchPos: 0, clipSkip: 1, embeddings: {}, promptWeighting: 'a1111', sdeNoise: 'brownian', loras: { grain: '0123456789ab', 'odd:name,x': 'ba9876543210' } } satisfies ImageMetadata;
  const text = formatInfotext(metadataParameters(m));
  assert.match(text, /Lora hashes: "grain: 0123456789ab, oddnamex: ba9876543210"/);
  assert.equal(recordedSettings(parseInfotext(text)).loraHashes, { grain: '0123456789ab', oddnamex: 'ba9876543210' });
});

test.run();
