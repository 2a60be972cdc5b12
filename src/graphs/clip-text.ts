import { ElemType } from '../onnx/proto.js';
import { attention, gelu, layerNorm, linear, quickGelu, scopeOf, tokenAndPositionSum, type Net } from './layers.js';
import type { TextEncoderConfig } from './model-config.js';
import { GraphBuilder, type WeightType } from './onnx-builder.js';
import type { ComponentWeights } from './weights.js';

/**
 * transformers' CLIPTextModel with the interface optimum exports: input_ids int32 [batch,
 * tokens] -> last_hidden_state (final layer norm of the last layer's output) and pooler_output
 * (last_hidden_state at each row's highest id, the end-of-text token, as transformers pools when
 * eos_token_id is 2, which SD's configs say). The residual stream is the chain of Adds
 * src/onnx/text-encoder-edit.ts walks for CLIP skip, and the token table keeps transformers'
 * name, which textual-inversion edits look for. SDXL's encoders add every layer's states
 * (hidden_states.N) and, for the second, text_embeds in place of pooler_output (`config.sdxl`).
 */
export function buildClipText(w: ComponentWeights, config: TextEncoderConfig, weightType: WeightType, name = 'text_encoder'): GraphBuilder {
  const g = new GraphBuilder(name, weightType);
  const net: Net = { g, w };
  const c = config;
  const ids = g.input('input_ids', ElemType.INT32, ['batch_size', 'sequence_length']);
  const { sum, length } = tokenAndPositionSum(net, ids, { tokens: 'text_model.embeddings.token_embedding.weight', positions: 'text_model.embeddings.position_embedding.weight' }, { vocab: c.vocabSize, positions: c.positions, hidden: c.hidden }, '/text_model/embeddings');
  let x = sum;
  const mask = causalMask(net, c.positions, length);
  const states = [x];
  for (let layer = 0; layer < c.layers; layer++) states.push((x = encoderLayer(net, `text_model.encoder.layers.${layer}`, x, c, mask)));
  const last = layerNorm(net, 'text_model.final_layer_norm', x, c.hidden, c.layerNormEps);
  const stateDims = ['batch_size', 'sequence_length', c.hidden];
  const pool = pooled(net, last, ids, c.hidden);
  if (c.sdxl?.projection !== undefined) {
    // CLIPTextModelWithProjection's text_embeds first, as optimum's SDXL export lists it: diffusers' ONNX
    // pipelines take an encoder's first output as the pooled embedding.
    g.output(linear(net, 'text_projection', pool, c.hidden, c.sdxl.projection, false), 'text_embeds', ElemType.FLOAT, ['batch_size', c.sdxl.projection]);
    g.output(last, 'last_hidden_state', ElemType.FLOAT, stateDims);
  } else {
    g.output(last, 'last_hidden_state', ElemType.FLOAT, stateDims);
    g.output(pool, 'pooler_output', ElemType.FLOAT, ['batch_size', c.hidden]);
  }
  // SDXL reads a layer's states before the final norm (hidden_states[-2]): optimum exports them all.
  if (c.sdxl) states.forEach((state, i) => g.output(state, `hidden_states.${i}`, ElemType.FLOAT, stateDims));
  return g;
}

function encoderLayer(net: Net, path: string, x: string, c: TextEncoderConfig, mask: string): string {
  const { g } = net;
  const scope = scopeOf(path);
  const normed = layerNorm(net, `${path}.layer_norm1`, x, c.hidden, c.layerNormEps);
  const attn = `${path}.self_attn`;
  const q = linear(net, `${attn}.q_proj`, normed, c.hidden, c.hidden);
  const k = linear(net, `${attn}.k_proj`, normed, c.hidden, c.hidden);
  const v = linear(net, `${attn}.v_proj`, normed, c.hidden, c.hidden);
  const attended = linear(net, `${attn}.out_proj`, attention(g, scopeOf(attn), q, k, v, c.heads, c.hidden / c.heads, mask), c.hidden, c.hidden);
  x = g.op('Add', [x, attended], scope);
  const hidden = linear(net, `${path}.mlp.fc1`, layerNorm(net, `${path}.layer_norm2`, x, c.hidden, c.layerNormEps), c.hidden, c.intermediate);
  const activated = c.activation === 'quick_gelu' ? quickGelu(g, hidden, `${scope}/mlp`) : gelu(g, hidden, `${scope}/mlp`);
  return g.op('Add', [x, linear(net, `${path}.mlp.fc2`, activated, c.intermediate, c.hidden)], scope);
}

/** [tokens, tokens]: 0 on and below the diagonal, float32's lowest value above (transformers' causal mask). */
function causalMask(net: Net, positions: number, length: string): string {
  const { g } = net;
  const lowest = -3.4028234663852886e38;
  const full = Array.from({ length: positions * positions }, (_, i) => (i % positions > Math.floor(i / positions) ? lowest : 0));
  const scope = '/text_model/encoder';
  return g.op('Slice', [g.floats(full, [positions, positions]), g.ints([0, 0]), g.op('Concat', [length, length], scope, { axis: 0 }), g.ints([0, 1])], scope);
}

/** last_hidden_state [B, S, C] at argmax(input_ids) of each row -> [B, C]. */
function pooled(net: Net, last: string, ids: string, hidden: number): string {
  const { g } = net;
  const scope = '/text_model';
  const at = g.op('ArgMax', [ids], scope, { axis: -1, keepdims: 1 });
  const index = g.op('Expand', [g.op('Unsqueeze', [at, g.ints([2])], scope), g.ints([1, 1, hidden])], scope);
  return g.op('Squeeze', [g.op('GatherElements', [last, index], scope, { axis: 1 }), g.ints([1])], scope);
}
