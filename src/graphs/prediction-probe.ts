import { floatTensor, toFloat32 } from '../onnx/dtype.js';
import { openSession } from '../onnx/session.js';
import type { Prediction } from './model-config.js';

/**
 * Whether an SD 2.x UNet predicts v or ε, which its weights do not say: AUTOMATIC1111's probe
 * (modules/sd_models_config.py, is_using_v_parameterization_for_sd2). At t = 999 the latents
 * are nearly pure noise; fed x = 0.5 everywhere with a constant text context, an ε-model
 * returns roughly its input, a v-model (v = alpha eps - sigma x0) something far below it, and
 * A1111 calls it v when the mean of (output - x) is below -1.
 */

export interface ProbeResult {
  prediction: Prediction;
  /** mean(unet(x, 999, context) - x), the number the decision is made on. */
  statistic: number;
}

const PROBE = { value: 0.5, timestep: 999, size: 8, tokens: 2, threshold: -1 } as const;

export async function probePrediction(unetPath: string, channels: { in: number; context: number }): Promise<ProbeResult> {
  const { session } = await openSession(unetPath, { device: 'cpu' });
  try {
    const n = channels.in * PROBE.size * PROBE.size;
    const x = new Float32Array(n).fill(PROBE.value);
    const feeds = {
      sample: floatTensor('float32', x, [1, channels.in, PROBE.size, PROBE.size]),
      timestep: floatTensor('float32', Float32Array.of(PROBE.timestep), [1]),
      encoder_hidden_states: floatTensor('float32', new Float32Array(PROBE.tokens * channels.context).fill(PROBE.value), [1, PROBE.tokens, channels.context]),
    };
    const out = toFloat32((await session.run(feeds))['out_sample']!);
    let sum = 0;
    for (let i = 0; i < out.length; i++) sum += out[i]! - PROBE.value;
    const statistic = sum / out.length;
    return { prediction: statistic < PROBE.threshold ? 'v_prediction' : 'epsilon', statistic };
  } finally {
    await session.release();
  }
}
