import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { cacheRoot } from '../models/index.js';
import { randomSeed } from '../rng/index.js';
import { DIFFUSERS_ADAMW } from '../train/adamw.js';
import { builtInTemplates, readTemplateFile } from '../train/templates.js';
import { readState } from '../train/state.js';
import { train, trainOutputs, type TrainEvent, type TrainRequest } from '../train/trainer.js';
import { readModelFiles } from '../pipeline/model-files.js';
import { TRAIN_OPTIONS, trainSettings, type TrainOptionSpec, type TrainSettings } from './embed-train-options.js';
import { chooseModel } from './model-choice.js';
import { runGeneration } from './run-generation.js';

/**
 * `diffuse embed-train`: textual inversion on ONNX Runtime (src/train/). Flags from the table in
 * embed-train-options.ts; a bar with the loss and ETA on stderr; Ctrl-C finishes the step under
 * way, saves a resumable state and exits 130 (a second Ctrl-C quits at once: the last saved
 * state and files are whole, every write being atomic).
 */
export function defineEmbedTrain(cmd: Command): Command {
  for (const o of TRAIN_OPTIONS as readonly TrainOptionSpec[]) cmd.option(o.flags, `${o.description}${defaultText(o)}`);
  return cmd.option('-q, --quiet', 'no progress output').action(async (raw: Record<string, unknown>) => {
    const settings = trainSettings(raw);
    await runTraining(settings, Boolean(raw.quiet));
  });
}

function defaultText(o: TrainOptionSpec): string {
  if (o.required) return ' (required)';
  if (o.defaultText) return ` (default: ${o.defaultText})`;
  return o.default === undefined || o.default === false || o.default === '' ? '' : ` (default: ${String(o.default)})`;
}

async function runTraining(settings: TrainSettings, quiet: boolean): Promise<void> {
  const templates = settings.templateFile ? readTemplateFile(settings.templateFile) : builtInTemplates(settings.template);
  const model = await chooseModel(settings, 'txt2img', quiet);
  const files = readModelFiles(model.dir);
  // A resumed run keeps the seed its state was saved with.
  const seed = settings.seed ?? (settings.resume ? Number(readState(trainOutputs({ outputDir: settings.output, token: settings.token }).state).settings.seed) : randomSeed());
  const request: TrainRequest = {
    modelDir: model.dir,
    imagesDir: settings.images,
    token: settings.token,
    initWord: settings.initWord,
    vectors: settings.vectors,
    templates,
    resolution: settings.resolution ?? files.sampleSize * files.vaeScaleFactor,
    centerCrop: settings.centerCrop,
    flipP: settings.flipP,
    steps: settings.steps,
    lr: settings.lr,
    lrSchedule: settings.lrSchedule,
    lrWarmup: settings.lrWarmup,
    batchSize: settings.batchSize,
    gradientAccumulation: settings.gradientAccumulation,
    adamw: { ...DIFFUSERS_ADAMW, weightDecay: settings.weightDecay },
    seed,
    saveEvery: settings.saveEvery,
    previewEvery: settings.previewEvery,
    outputDir: settings.output,
    overwrite: settings.overwrite,
    resume: settings.resume,
    device: settings.device,
    ...(settings.threads ? { threads: settings.threads } : {}),
    graphCache: join(cacheRoot(), 'graphs'),
  };
  if (!quiet) process.stderr.write(`training ${settings.token} on ${model.dir} (seed ${seed})\n`);

  let stopping = false;
  const onSigint = () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write('\nstopping after this step to save the state (Ctrl-C again quits at once)\n');
  };
  process.on('SIGINT', onSigint);
  const view = trainProgress(quiet);
  const previewPrompt = settings.previewPrompt ?? templates[0]!.replaceAll('[name]', settings.token).replaceAll('{}', settings.token).replaceAll('[filewords]', '');
  try {
    const result = await train(request, {
      onEvent: view.event,
      stopRequested: () => stopping,
      preview: async (step, embedding) => {
        view.pause();
        const dir = mkdtempSync(join(tmpdir(), 'diffuse-preview-'));
        try {
          writeFileSync(join(dir, `${settings.token}.safetensors`), embedding);
          await runGeneration({
            jobs: [{ prompt: previewPrompt }],
            flags: { model: model.dir, embeddingsDir: dir, seed: String(seed), output: join(settings.output, 'previews', `${settings.token}-${step}.png`), overwrite: true, quiet: true, device: settings.device, ...(settings.threads ? { threads: String(settings.threads) } : {}) },
            command: 'txt2img',
          });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        if (!quiet) process.stderr.write(`preview: ${join(settings.output, 'previews', `${settings.token}-${step}.png`)}\n`);
      },
    });
    view.stop();
    if (result.interrupted) {
      process.stderr.write(`interrupted after step ${result.steps}: ${result.embedding} and the state are saved; continue with --resume\n`);
      process.exitCode = 130;
      return;
    }
    process.stdout.write(`${result.embedding}\n`);
  } finally {
    view.stop();
    process.off('SIGINT', onSigint);
  }
}

interface TrainView {
  event(e: TrainEvent): void;
  pause(): void;
  stop(): void;
}

/** A bar on a terminal (step, loss, seconds per step, ETA); a line every 10 steps otherwise; nothing with --quiet. */
function trainProgress(quiet: boolean, stream: NodeJS.WriteStream = process.stderr): TrainView {
  if (quiet) return { event: () => {}, pause: () => {}, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  let recent: number[] = [];
  const say = (line: string) => {
    if (bar) bar.stop();
    bar = undefined;
    stream.write(`${line}\n`);
  };
  return {
    event: (e) => {
      if (e.kind === 'note') return say(e.message);
      if (e.kind === 'saved') return say(`saved ${e.path} (step ${e.step})`);
      recent = [...recent.slice(-19), e.seconds];
      const perStep = recent.reduce((a, b) => a + b, 0) / recent.length;
      const fields = { loss: e.loss.toFixed(4), lr: e.lr.toExponential(2), per: perStep.toFixed(2) };
      if (!stream.isTTY) {
        if (e.step % 10 === 0 || e.step === e.steps) stream.write(`step ${e.step}/${e.steps} loss ${fields.loss} lr ${fields.lr} ${fields.per} s/step ETA ${Math.round(perStep * (e.steps - e.step))} s\n`);
        return;
      }
      if (!bar) {
        bar = new cliProgress.SingleBar({ stream, format: 'train [{bar}] {value}/{total} steps | loss {loss} | lr {lr} | {per} s/step | ETA {eta_formatted}', hideCursor: true, etaBuffer: 20 }, cliProgress.Presets.shades_classic);
        bar.start(e.steps, e.step - 1, fields);
      }
      bar.update(e.step, fields);
    },
    pause: () => {
      bar?.stop();
      bar = undefined;
    },
    stop: () => {
      bar?.stop();
      bar = undefined;
    },
  };
}
