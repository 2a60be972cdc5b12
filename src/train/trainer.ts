import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '../image/write.js';
import { latentsFromParameters } from '../pipeline/image-latents.js';
import { modelHash } from '../pipeline/model-hash.js';
import { readModelFiles, requirePart } from '../pipeline/model-files.js';
import { VaeEncoder } from '../pipeline/vae.js';
import { openSession } from '../onnx/session.js';
import { discreteSchedule } from '../schedulers/index.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { encodeEmbeddingSafetensors } from '../text/embedding-write.js';
import { VERSION } from '../version.js';
import { adamWStep, newAdamWState } from './adamw.js';
import { listImages, loadTrainingImage, type TrainingImage } from './dataset.js';
import { TrainingDraws } from './draws.js';
import { TrainError, TrainInputError } from './errors.js';
import { openTrainSessions, type TrainSessions } from './gradient-sessions.js';
import { lossAndGradient, type PredictionType } from './loss-step.js';
import { lrSchedule } from './lr-schedule.js';
import { captionIds, checkPlaceholderToken, initWordIds, initialVectors, placeholderFor } from './placeholder.js';
import { changedSetting, readState, writeState, STATE_VERSION, type TrainState } from './state.js';
import { captionFor, fillTemplate } from './templates.js';
import type { TrainHooks, TrainRequest, TrainResult } from './types.js';

export type { TrainEvent, TrainHooks, TrainRequest, TrainResult } from './types.js';

/** Where a run writes: the embedding, its checkpoints and the state --resume reads. */
export function trainOutputs(request: Pick<TrainRequest, 'outputDir' | 'token'>) {
  const stem = fileStem(request.token);
  return {
    embedding: join(request.outputDir, `${stem}.safetensors`),
    checkpoint: (step: number) => join(request.outputDir, `${stem}-${step}.safetensors`),
    state: join(request.outputDir, `${stem}.train-state.json`),
  };
}

/** A1111 names an embedding after its file: the token is the file name. */
function fileStem(token: string): string {
  return token;
}

/** The settings a resumed run must share with the run that saved the state. */
function fixedSettings(request: TrainRequest, images: readonly string[]): Record<string, unknown> {
  const { token, initWord, vectors, templates, resolution, centerCrop, flipP, lr, lrSchedule: schedule, lrWarmup, batchSize, gradientAccumulation, adamw, seed } = request;
  return { images: images.map((p) => basename(p)), token, initWord, vectors, templates, resolution, centerCrop, flipP, lr, schedule, lrWarmup, batchSize, gradientAccumulation, adamw, seed };
}

function predictionOf(config: Record<string, unknown>): PredictionType {
  const p = config.prediction_type ?? 'epsilon';
  if (p === 'epsilon' || p === 'v_prediction') return p;
  throw new TrainError(`the scheduler's prediction_type is '${String(p)}'; textual inversion trains ε and v models only`);
}

function checkWritable(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new TrainInputError(`--output ${dir} cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose a folder you can write to`, { cause: err });
  }
}

/** Every picture's VAE distribution (mean, logvar), mirrored too when flips are on: the encoder is deterministic, so it runs once per picture, not per step. */
async function encodeImages(request: TrainRequest, images: TrainingImage[]): Promise<{ plain: Float32Array[]; flipped: Float32Array[] }> {
  const opened = await openSession(requirePart(request.modelDir, 'vae_encoder'), { device: request.device, ...(request.threads ? { threads: request.threads } : {}) });
  try {
    const encoder = new VaeEncoder(opened);
    if (encoder.output !== 'parameters') throw new TrainError("this model's vae_encoder returns a drawn sample, not the latent distribution; re-export it with optimum 1.14 or later");
    const encode = async (pixels: Float32Array) => (await encoder.encode(pixels, request.resolution, request.resolution)).data;
    const plain: Float32Array[] = [];
    const flipped: Float32Array[] = [];
    for (const image of images) {
      plain.push(await encode(image.pixels));
      if (image.flipped) flipped.push(await encode(image.flipped));
    }
    return { plain, flipped };
  } finally {
    await opened.session.release();
  }
}

export async function train(request: TrainRequest, hooks: TrainHooks): Promise<TrainResult> {
  const files = readModelFiles(request.modelDir);
  const prediction = predictionOf({ ...files.schedulerConfig });
  const tokenizer = await ClipTokenizer.fromDirectory(join(request.modelDir, 'tokenizer'));
  const schedule = discreteSchedule(files.schedulerConfig as never, { class: 'DDPMScheduler' });
  if (request.resolution % files.vaeScaleFactor !== 0) throw new TrainInputError(`--resolution ${request.resolution} is not a multiple of the VAE's ${files.vaeScaleFactor}`);
  const latent = request.resolution / files.vaeScaleFactor;
  const latentDims = [files.latentChannels, latent, latent] as const;
  const latentSize = files.latentChannels * latent * latent;
  checkPlaceholderToken(tokenizer, request.token, request.vectors);
  const initIds = initWordIds(tokenizer, request.initWord);
  const paths = listImages(request.imagesDir);
  const outputs = trainOutputs(request);
  checkWritable(request.outputDir);
  if (!request.resume && !request.overwrite && existsSync(outputs.embedding)) {
    throw new TrainInputError(`${outputs.embedding} exists; pass --overwrite to replace it, or --resume to continue its run`);
  }
  const settings = fixedSettings(request, paths);
  const saved = request.resume ? readState(outputs.state) : undefined;
  if (saved) {
    const changed = changedSetting(saved.settings, settings);
    if (changed) throw new TrainInputError(`--resume: the saved run used another ${changed} (${JSON.stringify(saved.settings[changed])}); resume with the same settings or start a new run`);
  }
  const lr = lrSchedule({ lr: request.lr, schedule: request.lrSchedule, warmup: request.lrWarmup, steps: request.steps });
  if (lr.steps < request.steps) hooks.onEvent({ kind: 'note', message: `the rate schedule '${lr.describe}' ends at step ${lr.steps}: training stops there (as A1111 does)` });

  hooks.onEvent({ kind: 'note', message: `preparing ${paths.length} picture${paths.length === 1 ? '' : 's'} at ${request.resolution}x${request.resolution}` });
  const images: TrainingImage[] = [];
  for (const path of paths) images.push(await loadTrainingImage(path, request.resolution, request.centerCrop, request.flipP > 0));
  const captions = paths.map(captionFor);
  const moments = await encodeImages(request, images);
  const hash = await modelHash(request.modelDir);

  hooks.onEvent({ kind: 'note', message: 'building the gradient graphs (cached after the first run)' });
  const place = { device: request.device, graphCache: request.graphCache, ...(request.threads ? { threads: request.threads } : {}) };
  const shape = { batch: request.batchSize, latentChannels: files.latentChannels, latentHeight: latent, latentWidth: latent, sequence: tokenizer.modelMaxLength };
  let sessions: TrainSessions | undefined = await openTrainSessions(request.modelDir, shape, place);
  try {
    const placeholder = placeholderFor(request.token, request.vectors, sessions.vocab);
    const fresh = (): TrainState => ({
      version: STATE_VERSION,
      step: 0,
      vectors: initialVectors(sessions!.table, sessions!.width, initIds, request.vectors),
      adam: newAdamWState(request.vectors * sessions!.width),
      draws: new TrainingDraws(request.seed, drawShape()).snapshot(),
      losses: [],
      settings,
    });
    function drawShape() {
      return { images: images.length, templates: request.templates.length, flipP: request.flipP, trainTimesteps: schedule.numTrainTimesteps, latentSize };
    }
    const state = saved ?? fresh();
    if (state.vectors.length !== request.vectors * sessions.width) throw new TrainInputError(`--resume: the saved vectors do not fit this model's width ${sessions.width}`);
    const draws = new TrainingDraws(request.seed, drawShape());
    draws.restore(state.draws);
    const width = sessions.width;
    const ctx = { sessions, alphasCumprod: schedule.alphasCumprod, prediction, latentDims };
    const metadata = (step: number): Record<string, string> => ({
      token: request.token,
      vectors: String(request.vectors),
      steps: String(step),
      base_model_hash: hash,
      base_model: basename(request.modelDir),
      init_word: request.initWord,
      learning_rate: lr.describe,
      seed: String(request.seed),
      trainer: `diffuse ${VERSION} embed-train`,
    });
    const embeddingBytes = (step: number) => encodeEmbeddingSafetensors(state.vectors, request.vectors, width, metadata(step));
    const saveEmbedding = async (path: string, step: number) => {
      await writeFileAtomic(path, embeddingBytes(step), { ifExists: 'overwrite' });
      return path;
    };
    const saveAll = async (step: number) => {
      state.draws = draws.snapshot();
      state.step = step;
      const path = await saveEmbedding(outputs.checkpoint(step), step);
      await writeState(outputs.state, state);
      hooks.onEvent({ kind: 'saved', step, path });
      return path;
    };

    const steps = lr.steps;
    let interrupted = false;
    for (let k = state.step; k < steps; k++) {
      const started = performance.now();
      const gradient = new Float32Array(state.vectors.length);
      let lossSum = 0;
      for (let micro = 0; micro < request.gradientAccumulation; micro++) {
        const draw = draws.next(request.batchSize);
        const latents = new Float32Array(request.batchSize * latentSize);
        draw.items.forEach((item, b) => {
          const parameters = item.flip ? moments.flipped[item.image]! : moments.plain[item.image]!;
          latents.set(latentsFromParameters(parameters, files.vaeScalingFactor, draw.latentEps.subarray(b * latentSize, (b + 1) * latentSize)), b * latentSize);
        });
        const ids = draw.items.map((item) => captionIds(tokenizer, fillTemplate(request.templates[item.template]!, captions[item.image]!), placeholder));
        const result = await lossAndGradient(ctx, state.vectors, { ids, latents, noise: draw.noise, timesteps: draw.timesteps }, 1 / request.gradientAccumulation);
        for (let i = 0; i < gradient.length; i++) gradient[i] = Math.fround(gradient[i]! + result.gradient[i]!);
        lossSum += result.loss;
      }
      const rate = lr.rate(k);
      adamWStep(state.vectors, gradient, state.adam, rate, request.adamw);
      const loss = lossSum / request.gradientAccumulation;
      state.losses.push(loss);
      const done = k + 1;
      hooks.onEvent({ kind: 'step', step: done, steps, loss, lr: rate, seconds: (performance.now() - started) / 1000 });
      const stop = hooks.stopRequested();
      // The last step's file is the embedding itself.
      if (done < steps && ((request.saveEvery > 0 && done % request.saveEvery === 0) || stop)) await saveAll(done);
      if (hooks.preview && request.previewEvery > 0 && done % request.previewEvery === 0 && !stop) {
        // The gradient graphs close meanwhile: a preview loads the model for inference, and both at once would not fit at 512².
        await sessions!.release();
        sessions = undefined;
        await hooks.preview(done, embeddingBytes(done));
        if (done < steps) {
          sessions = await openTrainSessions(request.modelDir, shape, place);
          ctx.sessions = sessions;
        }
      }
      if (stop && done < steps) {
        interrupted = true;
        break;
      }
    }
    state.draws = draws.snapshot();
    if (interrupted) return { embedding: outputs.checkpoint(state.step), state: outputs.state, steps: state.step, losses: state.losses, interrupted };
    state.step = steps;
    await writeState(outputs.state, state);
    const embedding = await saveEmbedding(outputs.embedding, steps);
    hooks.onEvent({ kind: 'saved', step: steps, path: embedding });
    return { embedding, state: outputs.state, steps, losses: state.losses, interrupted: false };
  } finally {
    await sessions?.release();
  }
}
