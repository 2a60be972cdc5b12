import { ort } from '../onnx/runtime.js';
import type { TrainSessions } from './gradient-sessions.js';
import { TrainError } from './errors.js';

/**
 * One batch of diffusers' textual-inversion loss and its gradient with respect to the learned
 * vectors: latents (already sampled and scaled), noise and timesteps → noisy latents by
 * DDPMScheduler.add_noise, the text encoder on the captions' embeddings (learned rows for the
 * placeholder ids), the UNet's prediction against the noise (ε models) or the velocity
 * (v models), MSE over every value. The UNet graph returns the loss and d loss / d hidden
 * states; the text encoder graph turns that into d loss / d inputs_embeds, whose rows at the
 * placeholder's positions are summed per learned vector (what torch's embedding backward does).
 */

export type PredictionType = 'epsilon' | 'v_prediction';

export interface LossBatch {
  /** Per item, the caption's ids (sequence long); ids ≥ vocab are the learned vectors. */
  ids: number[][];
  latents: Float32Array;
  noise: Float32Array;
  timesteps: number[];
}

export interface LossContext {
  sessions: TrainSessions;
  /** diffusers' alphas_cumprod (float32 values). */
  alphasCumprod: ArrayLike<number>;
  prediction: PredictionType;
  latentDims: readonly [number, number, number];
}

export interface LossResult {
  loss: number;
  /** [vectors, width]: d loss / d learned vector, times `gradientScale`. */
  gradient: Float32Array;
}

const f = Math.fround;

function embeddingsFor(ids: number[][], sessions: TrainSessions, learned: Float32Array): Float32Array {
  const { table, vocab, width, sequence } = sessions;
  const out = new Float32Array(ids.length * sequence * width);
  ids.forEach((row, b) =>
    row.forEach((id, t) => {
      const source = id < vocab ? table.subarray(id * width, (id + 1) * width) : learned.subarray((id - vocab) * width, (id - vocab + 1) * width);
      out.set(source, (b * sequence + t) * width);
    }),
  );
  return out;
}

/** add_noise (and get_velocity for v models) in float32 as diffusers computes them. */
export function noisyAndTarget(latents: Float32Array, noise: Float32Array, timesteps: readonly number[], alphasCumprod: ArrayLike<number>, prediction: PredictionType): { noisy: Float32Array; target: Float32Array } {
  const per = latents.length / timesteps.length;
  const noisy = new Float32Array(latents.length);
  const target = prediction === 'epsilon' ? noise : new Float32Array(latents.length);
  timesteps.forEach((t, b) => {
    const a = f(alphasCumprod[t]!);
    const sa = f(Math.sqrt(a));
    const so = f(Math.sqrt(f(1 - a)));
    for (let i = b * per; i < (b + 1) * per; i++) {
      noisy[i] = f(f(sa * latents[i]!) + f(so * noise[i]!));
      if (prediction === 'v_prediction') target[i] = f(f(sa * noise[i]!) - f(so * latents[i]!));
    }
  });
  return { noisy, target };
}

async function run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, fetch: string[]): Promise<Record<string, Float32Array>> {
  const out = await session.run(feeds, fetch);
  return Object.fromEntries(fetch.map((name) => [name, out[name]!.data as Float32Array]));
}

export async function lossAndGradient(ctx: LossContext, learned: Float32Array, batch: LossBatch, gradientScale: number): Promise<LossResult> {
  const { sessions } = ctx;
  const { text, unet } = sessions;
  const b = batch.ids.length;
  const embedsInput = Object.keys(text.info.gradOutputs)[0]!;
  const hiddenOutput = Object.keys(text.info.seeds)[0]!;
  const hiddenSeed = text.info.seeds[hiddenOutput]!;
  const hiddenDims = [b, sessions.sequence, sessions.width];
  const embeds = new ort.Tensor('float32', embeddingsFor(batch.ids, sessions, learned), hiddenDims);
  const hiddenCount = b * sessions.sequence * sessions.width;

  const forward = await run(text.opened.session, { [embedsInput]: embeds, [hiddenSeed]: new ort.Tensor('float32', new Float32Array(hiddenCount), hiddenDims) }, [hiddenOutput]);
  const { noisy, target } = noisyAndTarget(batch.latents, batch.noise, batch.timesteps, ctx.alphasCumprod, ctx.prediction);
  const latentDims = [b, ...ctx.latentDims];
  const timestepDims = unet.info.inputs.find((i) => i.name === 'timestep')!.dims;
  const timestep =
    sessions.timestepType === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(batch.timesteps.map(BigInt)), timestepDims)
      : new ort.Tensor('float32', Float32Array.from(batch.timesteps), timestepDims);
  const hiddenGradOutput = unet.info.gradOutputs.encoder_hidden_states!;
  const lossOut = unet.info.loss!;
  const unetOut = await run(
    unet.opened.session,
    {
      sample: new ort.Tensor('float32', noisy, latentDims),
      timestep,
      encoder_hidden_states: new ort.Tensor('float32', forward[hiddenOutput]!, hiddenDims),
      [lossOut.target]: new ort.Tensor('float32', target, latentDims),
    },
    [lossOut.output, hiddenGradOutput],
  );
  const loss = unetOut[lossOut.output]![0]!;
  if (!Number.isFinite(loss)) throw new TrainError(`the loss became ${loss}; lower --lr (the learned vectors diverged)`);
  const seed = unetOut[hiddenGradOutput]!;
  const scaled = gradientScale === 1 ? seed : seed.map((v) => f(v * gradientScale));
  const back = await run(text.opened.session, { [embedsInput]: embeds, [hiddenSeed]: new ort.Tensor('float32', scaled, hiddenDims) }, [text.info.gradOutputs[embedsInput]!]);
  const embedsGrad = back[text.info.gradOutputs[embedsInput]!]!;
  const { vocab, width, sequence } = sessions;
  const vectors = learned.length / width;
  const gradient = new Float32Array(vectors * width);
  batch.ids.forEach((row, bi) =>
    row.forEach((id, t) => {
      if (id < vocab) return;
      const at = (bi * sequence + t) * width;
      const into = (id - vocab) * width;
      for (let k = 0; k < width; k++) gradient[into + k] = f(gradient[into + k]! + embedsGrad[at + k]!);
    }),
  );
  return { loss, gradient };
}
