import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readModelFiles } from '../src/pipeline/model-files.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { readEmbedding } from '../src/text/embeddings.js';
import { DIFFUSERS_ADAMW } from '../src/train/adamw.js';
import { TrainingDraws } from '../src/train/draws.js';
import { openTrainSessions } from '../src/train/gradient-sessions.js';
import { lossAndGradient } from '../src/train/loss-step.js';
import { OBJECT_TEMPLATES } from '../src/train/templates.js';
import { train, type TrainRequest } from '../src/train/trainer.js';
import { TINY_SD } from './helpers/cli.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';

/**
 * embed-train against diffusers' textual-inversion body in torch on the tiny-sd weights
 * (tools/make_train_refs.py), with the same draws:
 * - the stream: images, templates, flips and timesteps equal; normals bit for bit;
 * - one batch of two: the loss within 1e-5 relative and d loss / d placeholder rows within
 *   1e-5 of their largest entry (float32 both sides, different summation orders through the UNet's
 *   and text encoder's backward);
 * - a 200-step run (batch 1, accumulation 2, cosine rate with warmup, flips, centre crop): every
 *   step's loss within 1e-5 relative of torch's and the final vectors within 1e-5 of their largest
 *   entry (the two runs are separate float32 trajectories through AdamW, whose normalised steps
 *   carry the per-step rounding differences forward); both lower the loss by the same amount.
 */
const REFS = join(FIXTURES, 'train');
const GRADIENT_TOLERANCE = 1e-5;
const STEP_LOSS_TOLERANCE = 1e-5;
const FINAL_VECTORS_TOLERANCE = 1e-5;

interface ArrayRef {
  file: string;
  shape: number[];
}
interface Refs {
  token: string;
  init_word: string;
  vectors: number;
  resolution: number;
  placeholder_ids: number[];
  draws: { seed: number; images: number; templates: number; flip_p: number; latent_size: number; batches: { items: [number, number, boolean][]; timesteps: number[]; eps_head: number[]; noise_tail: number[] }[] };
  gradient: { ids: number[][]; timesteps: number[]; latents: ArrayRef; noise: ArrayRef; vectors: ArrayRef; loss: number; grad: ArrayRef };
  curve: {
    settings: { seed: number; batch_size: number; gradient_accumulation: number; lr: number; lr_schedule: string; lr_warmup: number; flip_p: number; center_crop: boolean; steps: number };
    first_ids: number[][];
    initial: ArrayRef;
    losses: number[];
    final: ArrayRef;
  };
}
const refs = readJson<Refs>(join(REFS, 'refs.json.gz'));
const read = (r: ArrayRef) => readF32(join(REFS, r.file));
const scratch = mkdtempSync(join(tmpdir(), 'diffuse-train-ref-'));

test('the training stream draws what torch.Generator draws', () => {
  const d = refs.draws;
  const draws = new TrainingDraws(d.seed, { images: d.images, templates: d.templates, flipP: d.flip_p, trainTimesteps: 1000, latentSize: d.latent_size });
  for (const want of d.batches) {
    const got = draws.next(want.items.length);
    assert.equal(got.items.map((i) => [i.image, i.template, i.flip]), want.items);
    assert.equal(got.timesteps, want.timesteps);
    assert.equal(Array.from(got.latentEps.subarray(0, 8)), want.eps_head.map(Math.fround));
    assert.equal(Array.from(got.noise.subarray(-8)), want.noise_tail.map(Math.fround));
  }
});

test('gradient of the textual-inversion loss w.r.t. the placeholder rows equals torch autograd', async () => {
  const g = refs.gradient;
  const files = readModelFiles(TINY_SD);
  const sessions = await openTrainSessions(TINY_SD, { batch: 2, latentChannels: 4, latentHeight: 16, latentWidth: 16, sequence: 77 }, { device: 'cpu', threads: 1, graphCache: join(scratch, 'graphs') });
  try {
    assert.equal(refs.placeholder_ids, [sessions.vocab, sessions.vocab + 1], "torch's added token ids are the ones after the vocabulary");
    const ctx = { sessions, alphasCumprod: discreteSchedule(files.schedulerConfig as never, { class: 'DDPMScheduler' }).alphasCumprod, prediction: 'epsilon' as const, latentDims: [4, 16, 16] as const };
    const result = await lossAndGradient(ctx, read(g.vectors), { ids: g.ids, latents: read(g.latents), noise: read(g.noise), timesteps: g.timesteps }, 1);
    assert.ok(Math.abs(result.loss - g.loss) <= 1e-5 * g.loss, `loss ${result.loss} vs torch ${g.loss}`);
    const { relToMax } = compare(result.gradient, read(g.grad));
    console.log(`  placeholder gradient: ${relToMax.toExponential(2)} of max`);
    assert.ok(relToMax <= GRADIENT_TOLERANCE, `gradient off by ${relToMax} of max`);
  } finally {
    await sessions.release();
  }
});

test('200 steps on the tiny model follow torch loss for loss, and the saved file loads back bit for bit', async () => {
  const c = refs.curve;
  const s = c.settings;
  const request: TrainRequest = {
    modelDir: TINY_SD,
    imagesDir: join(REFS, 'images'),
    token: refs.token,
    initWord: refs.init_word,
    vectors: refs.vectors,
    templates: OBJECT_TEMPLATES,
    resolution: refs.resolution,
    centerCrop: s.center_crop,
    flipP: s.flip_p,
    steps: s.steps,
    lr: String(s.lr),
    lrSchedule: s.lr_schedule as 'cosine',
    lrWarmup: s.lr_warmup,
    batchSize: s.batch_size,
    gradientAccumulation: s.gradient_accumulation,
    adamw: DIFFUSERS_ADAMW,
    seed: s.seed,
    saveEvery: 0,
    previewEvery: 0,
    outputDir: join(scratch, 'out'),
    overwrite: false,
    resume: false,
    device: 'cpu',
    // One thread: the tiny graphs gain nothing from more, and spinning threads cost on a shared machine.
    threads: 1,
    graphCache: join(scratch, 'graphs'),
  };
  const result = await train(request, { onEvent: () => {}, stopRequested: () => false });
  assert.is(result.losses.length, s.steps);
  let worst = 0;
  result.losses.forEach((l, i) => (worst = Math.max(worst, Math.abs(l - c.losses[i]!) / c.losses[i]!)));
  console.log(`  step losses: ${worst.toExponential(2)} relative at worst`);
  assert.ok(worst <= STEP_LOSS_TOLERANCE, `a step's loss differs from torch's by ${worst} relative`);
  const saved = readEmbedding(result.embedding);
  const final = read(c.final);
  const vectors = compare(saved.vectors, final);
  console.log(`  final vectors: ${vectors.relToMax.toExponential(2)} of max`);
  assert.ok(vectors.relToMax <= FINAL_VECTORS_TOLERANCE, `final vectors off by ${vectors.relToMax} of max`);
  assert.ok(compare(saved.vectors, read(c.initial)).maxAbs > 100 * vectors.maxAbs, 'the vectors moved far more than the two runs differ');
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  const drop = (l: number[]) => mean(l.slice(0, 50)) - mean(l.slice(-50));
  console.log(`  mean loss drop, first 50 to last 50 steps: ${drop(result.losses).toFixed(5)} (torch ${drop(c.losses).toFixed(5)})`);
  assert.ok(drop(c.losses) > 0 && drop(result.losses) > 0, 'the loss goes down');
  assert.ok(Math.abs(drop(result.losses) - drop(c.losses)) <= 1e-4, 'by as much as in torch');
});

test.run();
