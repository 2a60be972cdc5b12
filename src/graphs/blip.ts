import { ElemType } from '../onnx/proto.js';
import { CheckpointError } from './errors.js';
import { num, readConfig } from './diffusers-folder.js';
import { attention, conv2d, gelu, layerNorm, linear, scopeOf, tokenAndPositionSum, toTokens, type Net } from './layers.js';
import { GraphBuilder, type WeightType } from './onnx-builder.js';
import type { ComponentWeights, TensorStore, WeightSource } from './weights.js';

/**
 * transformers' BlipForConditionalGeneration (Salesforce/blip-image-captioning-base and -large) as the two graphs
 * src/pipeline/interrogate/blip-captioner.ts runs:
 *   vision_model: pixel_values [batch, 3, S, S] -> last_hidden_state (the ViT's tokens after post_layernorm);
 *   text_decoder_model: input_ids int64 [batch, seq], encoder_hidden_states -> logits [batch, seq, vocab]
 *     (BERT with causal self-attention and cross-attention to the picture, post-norm, and the LM head).
 * Hyper-parameters come from config.json with BlipVisionConfig's and BlipTextConfig's defaults for the keys
 * save_pretrained leaves out; every weight's shape is checked against them.
 */

export interface BlipTowerConfig {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  eps: number;
}
export interface BlipConfig {
  vision: BlipTowerConfig & { imageSize: number; patch: number };
  text: BlipTowerConfig & { vocab: number; positions: number; encoderHidden: number };
}

type Json = Record<string, unknown>;

function tower(config: Json, path: string, defaults: BlipTowerConfig & { act: string }): BlipTowerConfig {
  const act = config.hidden_act ?? defaults.act;
  if (act !== 'gelu') throw new CheckpointError(`${path}: hidden_act ${JSON.stringify(act)} is not BLIP's gelu`);
  const c = {
    hidden: num(config, 'hidden_size', path, defaults.hidden),
    intermediate: num(config, 'intermediate_size', path, defaults.intermediate),
    layers: num(config, 'num_hidden_layers', path, defaults.layers),
    heads: num(config, 'num_attention_heads', path, defaults.heads),
    eps: num(config, 'layer_norm_eps', path, defaults.eps),
  };
  if (!Number.isInteger(c.layers) || c.layers < 1 || c.layers > 64 || !Number.isInteger(c.heads) || c.heads < 1 || c.hidden % c.heads !== 0) {
    throw new CheckpointError(`${path}: ${c.layers} layers of ${c.heads} heads over ${c.hidden} channels is not a BLIP tower`);
  }
  return c;
}

/** config.json of a BlipForConditionalGeneration folder. */
export function readBlipConfig(dir: string): BlipConfig {
  const config = readConfig(dir, 'config.json');
  const path = `${dir}/config.json`;
  const part = (key: string): Json => {
    const v = config[key];
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new CheckpointError(`${path} has no ${key}: it is not a BlipForConditionalGeneration config (Salesforce/blip-image-captioning-base's has both text_config and vision_config)`);
    return v as Json;
  };
  const v = part('vision_config');
  const t = part('text_config');
  return {
    vision: { ...tower(v, `${path} vision_config`, { hidden: 768, intermediate: 3072, layers: 12, heads: 12, eps: 1e-5, act: 'gelu' }), imageSize: num(v, 'image_size', path, 384), patch: num(v, 'patch_size', path, 16) },
    text: {
      ...tower(t, `${path} text_config`, { hidden: 768, intermediate: 3072, layers: 12, heads: 8, eps: 1e-12, act: 'gelu' }),
      vocab: num(t, 'vocab_size', path, 30524),
      positions: num(t, 'max_position_embeddings', path, 512),
      encoderHidden: num(t, 'encoder_hidden_size', path, 768),
    },
  };
}

const QKV = /^(vision_model\.encoder\.layers\.\d+\.self_attn)\.([qkv])\.(weight|bias)$/;

/** Graph weight names are the checkpoint's keys, except the vision q/k/v (rows of the packed qkv) and the tied decoder bias. */
export function blipLocator(config: BlipConfig): (name: string) => WeightSource | undefined {
  const h = config.vision.hidden;
  return (name) => {
    const m = QKV.exec(name);
    if (m) {
      const i = 'qkv'.indexOf(m[2]!);
      return { key: `${m[1]}.qkv.${m[3]}`, rows: [i * h, (i + 1) * h] };
    }
    if (name === 'text_decoder.cls.predictions.decoder.bias') return { key: 'text_decoder.cls.predictions.bias' };
    return { key: name };
  };
}

/** Refuses a weight file that is not a BLIP captioner before any graph is built. */
export function checkBlipStore(store: TensorStore): void {
  for (const key of ['vision_model.embeddings.patch_embedding.weight', 'text_decoder.bert.embeddings.word_embeddings.weight']) {
    if (!store.describe(key)) throw new CheckpointError(`${store.label} is not a BLIP captioning checkpoint (no ${key}); pass Salesforce/blip-image-captioning-base's or -large's model.safetensors`);
  }
}

function mlp(net: Net, path: string, x: string, c: BlipTowerConfig, up: string, down: string): string {
  return linear(net, `${path}.${down}`, gelu(net.g, linear(net, `${path}.${up}`, x, c.hidden, c.intermediate), scopeOf(path)), c.intermediate, c.hidden);
}

export function buildBlipVision(w: ComponentWeights, config: BlipConfig, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('vision_model', weightType);
  const net: Net = { g, w };
  const c = config.vision;
  const grid = c.imageSize / c.patch;
  if (!Number.isInteger(grid)) throw new CheckpointError(`${w.component}: image_size ${c.imageSize} is not a multiple of patch_size ${c.patch}`);
  const pixels = g.input('pixel_values', ElemType.FLOAT, ['batch_size', 3, c.imageSize, c.imageSize]);
  const scope = '/vision_model/embeddings';
  const patches = conv2d(net, 'vision_model.embeddings.patch_embedding', pixels, 3, c.hidden, { stride: c.patch, pads: [0, 0, 0, 0] });
  const tokens = toTokens(g, patches, c.hidden, scope);
  const batch = g.op('Slice', [g.op('Shape', [pixels], scope), g.ints([0]), g.ints([1])], scope);
  const classToken = g.op('Expand', [g.weight(w.take('vision_model.embeddings.class_embedding', 'as-is', [1, 1, c.hidden])), g.op('Concat', [batch, g.ints([1, c.hidden])], scope, { axis: 0 })], scope);
  const positions = g.weight(w.take('vision_model.embeddings.position_embedding', 'as-is', [1, grid * grid + 1, c.hidden]));
  let x = g.op('Add', [g.op('Concat', [classToken, tokens], scope, { axis: 1 }), positions], scope);
  for (let layer = 0; layer < c.layers; layer++) {
    const path = `vision_model.encoder.layers.${layer}`;
    const attn = `${path}.self_attn`;
    const normed = layerNorm(net, `${path}.layer_norm1`, x, c.hidden, c.eps);
    const [q, k, v] = (['q', 'k', 'v'] as const).map((p) => linear(net, `${attn}.${p}`, normed, c.hidden, c.hidden));
    x = g.op('Add', [x, linear(net, `${attn}.projection`, attention(g, scopeOf(attn), q!, k!, v!, c.heads, c.hidden / c.heads), c.hidden, c.hidden)], scopeOf(path));
    x = g.op('Add', [x, mlp(net, `${path}.mlp`, layerNorm(net, `${path}.layer_norm2`, x, c.hidden, c.eps), c, 'fc1', 'fc2')], scopeOf(path));
  }
  const last = layerNorm(net, 'vision_model.post_layernorm', x, c.hidden, c.eps);
  g.output(last, 'last_hidden_state', ElemType.FLOAT, ['batch_size', grid * grid + 1, c.hidden]);
  return g;
}

/** BERT's post-norm sub-layer: LayerNorm(dense(x) + residual). */
function addNorm(net: Net, path: string, x: string, residual: string, inFeatures: number, c: BlipTowerConfig): string {
  return layerNorm(net, `${path}.LayerNorm`, net.g.op('Add', [linear(net, `${path}.dense`, x, inFeatures, c.hidden), residual], scopeOf(path)), c.hidden, c.eps);
}

function bertAttention(net: Net, path: string, x: string, kv: string, kvWidth: number, c: BlipTowerConfig, mask?: string): string {
  const self = `${path}.self`;
  const q = linear(net, `${self}.query`, x, c.hidden, c.hidden);
  const k = linear(net, `${self}.key`, kv, kvWidth, c.hidden);
  const v = linear(net, `${self}.value`, kv, kvWidth, c.hidden);
  return addNorm(net, `${path}.output`, attention(net.g, scopeOf(self), q, k, v, c.heads, c.hidden / c.heads, mask), x, c.hidden, c);
}

export function buildBlipDecoder(w: ComponentWeights, config: BlipConfig, weightType: WeightType): GraphBuilder {
  const g = new GraphBuilder('text_decoder_model', weightType);
  const net: Net = { g, w };
  const c = config.text;
  const ids = g.input('input_ids', ElemType.INT64, ['batch_size', 'sequence_length']);
  const image = g.input('encoder_hidden_states', ElemType.FLOAT, ['batch_size', 'image_tokens', c.encoderHidden]);
  const scope = '/text_decoder/bert/embeddings';
  const { sum: summed, length } = tokenAndPositionSum(net, ids, { tokens: 'text_decoder.bert.embeddings.word_embeddings.weight', positions: 'text_decoder.bert.embeddings.position_embeddings.weight' }, { vocab: c.vocab, positions: c.positions, hidden: c.hidden }, scope);
  let x = layerNorm(net, 'text_decoder.bert.embeddings.LayerNorm', summed, c.hidden, c.eps);
  // transformers' decoder mask: float32's lowest added above the diagonal
  const lowest = g.op('Expand', [g.floats([-3.4028234663852886e38], []), g.op('Concat', [length, length], scope, { axis: 0 })], scope);
  const mask = g.op('Trilu', [lowest, g.ints([1], [])], scope, { upper: 1 });
  for (let layer = 0; layer < c.layers; layer++) {
    const path = `text_decoder.bert.encoder.layer.${layer}`;
    x = bertAttention(net, `${path}.attention`, x, x, c.hidden, c, mask);
    x = bertAttention(net, `${path}.crossattention`, x, image, c.encoderHidden, c);
    const inner = gelu(g, linear(net, `${path}.intermediate.dense`, x, c.hidden, c.intermediate), scopeOf(`${path}.intermediate`));
    x = addNorm(net, `${path}.output`, inner, x, c.intermediate, c);
  }
  const head = 'text_decoder.cls.predictions';
  const transformed = layerNorm(net, `${head}.transform.LayerNorm`, gelu(g, linear(net, `${head}.transform.dense`, x, c.hidden, c.hidden), scopeOf(`${head}.transform`)), c.hidden, c.eps);
  g.output(linear(net, `${head}.decoder`, transformed, c.hidden, c.vocab), 'logits', ElemType.FLOAT, ['batch_size', 'sequence_length', c.vocab]);
  return g;
}
