import { isBuiltinHiresUpscaler } from '../settings/options.js';
import { loadConfig, resolveSettings } from '../settings/config.js';
import { imageFormatOf } from '../image/image-format.js';
import { encodeImage } from '../image/encode-image.js';
import { metadataInfotext } from '../image/infotext.js';
import { planOutputs, preflightOutputs, resolveOutputTarget, type OutputTarget } from '../image/output-path.js';
import { writeFileAtomic } from '../image/write.js';
import type { ModelBundle } from '../pipeline/bundle.js';
import { generate } from '../pipeline/generate.js';
import { loadModel } from '../pipeline/load.js';
import { readModelFiles, type ModelFiles } from '../pipeline/model-files.js';
import { previewer, type Previewer } from '../pipeline/preview.js';
import { checkRequest } from '../pipeline/check-request.js';
import { nthBatch } from '../pipeline/seeds.js';
import type { GenerationRequest, GenerationResult } from '../pipeline/types.js';
import { randomSeed } from '../rng/index.js';
import { MODEL_TASK, loadGroups, prepareGeneration, resolveSampling, samplingLabel, withPromptNetworks, type PreparedGeneration } from '../settings/generation-plan.js';
import { checkOptionValues } from '../settings/option-values.js';
import type { GeneratingCommand, Settings } from '../settings/options.js';
import { UsageError } from '../errors.js';
import { encodePng } from '../image/encode-png.js';
import { chooseModel, type ChosenModel } from './model-choice.js';
import { progressView } from './progress.js';
import { chooseVae, installedTaesd, isSdxlLatents, taesdIdFor, type ChosenVae } from './vae-choice.js';
import { warnNotRun } from './config-warnings.js';
import { listEmbeddingFiles } from '../text/embeddings.js';
import { terminalText } from './terminal-text.js';
import { parseXyz, type XyzPlan } from '../settings/xyz.js';
import { nameVars, type ImageSink, type Writer } from './image-sink.js';
import { xyzOutput } from './xyz-output.js';
import { chooseUpscaler } from './upscaler-choice.js';
import { chooseControlNets } from './controlnet-choice.js';
import { chooseRegistryLoras } from './lora-choice.js';

/** Raw commander values: strings as typed, parsed by the options table. */
export type GenerationFlags = Record<string, unknown> & { json?: boolean; quiet?: boolean; config?: string };

/** One prompt to run; `values` (a JSONL prompts line) override the flags, with `where` naming them in messages. */
export interface GenerationJob {
  prompt: string;
  values?: Record<string, unknown>;
  where?: string;
}

export interface GenerationInput {
  /** One job, or several (txt2img --prompts-file) run on as few model loads as they allow. */
  jobs: readonly GenerationJob[];
  flags: GenerationFlags;
  command: GeneratingCommand;
  /** txt2img --from: the settings the image records (flags win over them, they win over the config file). */
  recorded?: Record<string, unknown>;
  /** txt2img --from: the LoRAs the image records (A1111's "Lora hashes"), checked against the files the run loads. */
  recordedLoras?: Record<string, string>;
}

interface PlannedJob {
  /** Its place in the run's jobs (an --xyz tile's index). */
  index: number;
  prompt: string;
  prepared: PreparedGeneration;
  /** --preview's file and how often it is redrawn. */
  preview: { path: string; every: number } | undefined;
}

/**
 * Shared by every generating subcommand: flags and config → settings → requests → the one
 * pipeline → images with their parameters. Everything a user can get wrong is checked before a
 * model loads, and no file is written until its image exists. Jobs that need the same model load
 * share one (prompts whose <lora:…> tags differ need their own: networks change weights).
 */
export async function runGeneration(input: GenerationInput): Promise<void> {
  const { command } = input;
  const config = await loadConfig(process.cwd(), input.flags.config);
  warnNotRun(config.notRun);
  const xyz = xyzPlanOf(input);
  // An X/Y/Z plot compares settings: every tile draws the same noise unless the seed is an axis (A1111's fix_seed).
  const flags = xyz && input.flags.seed === undefined && input.recorded?.seed === undefined ? { ...input.flags, seed: String(randomSeed()) } : input.flags;
  const jobs: readonly GenerationJob[] = xyz ? xyz.tiles.map((t) => ({ prompt: t.prompt, values: t.values, where: `--xyz tile ${t.x},${t.y},${t.z}` })) : input.jobs;
  const resolvedJobs = jobs.map((job) => {
    if (job.values) checkOptionValues(job.values, job.where ?? 'prompt', command);
    const resolved = resolveSettings(config, { ...flags, ...job.values }, command, input.recorded);
    if (xyz && resolved.settings.batchSize * resolved.settings.batchCount > 1) throw new UsageError('--xyz: each tile is one image; leave out --batch-size and --batch-count');
    resolveSampling(resolved.settings, (key) => samplingLabel(resolved, key));
    // A folder that is not there is a usage error, found before anything loads.
    if (resolved.settings.embeddingsDir) listEmbeddingFiles(resolved.settings.embeddingsDir);
    return { job, resolved };
  });
  // Every name of the run (every prompt, batch and image), before a model is chosen (which may download) or a step runs.
  const sink = xyz
    ? await xyzOutput({ plan: xyz, target: await resolveOutputTarget(resolvedJobs[0]!.resolved.settings.output), settings: resolvedJobs[0]!.resolved.settings, labels: !flags.xyzNoLabels, keepTiles: Boolean(flags.xyzKeepTiles), json: Boolean(flags.json) })
    : await fileOutputs(resolvedJobs.map((r) => r.resolved.settings), Boolean(flags.json));
  const models = new Map<string, Promise<ChosenModel>>();
  const planned: PlannedJob[] = [];
  for (const [i, { job, resolved }] of resolvedJobs.entries()) {
    const key = JSON.stringify([resolved.settings.model, resolved.settings.offline]);
    if (!models.has(key)) models.set(key, chooseModel(resolved.settings, MODEL_TASK[command], Boolean(flags.quiet)));
    const refinerRef = resolved.settings.refiner;
    const refinerKey = JSON.stringify([refinerRef, resolved.settings.offline]);
    if (refinerRef && !models.has(refinerKey)) models.set(refinerKey, chooseModel({ ...resolved.settings, model: refinerRef }, 'img2img', Boolean(flags.quiet)));
    const refiner = refinerRef ? await models.get(refinerKey)! : undefined;
    const hiresRef = resolved.settings.hiresUpscaler;
    const hiresOn = resolved.settings.hiresScale !== undefined || resolved.settings.hiresSize !== undefined;
    const options = { offline: resolved.settings.offline, yes: resolved.settings.yes, quiet: Boolean(flags.quiet) };
    const hiresUpscaler = hiresOn && !isBuiltinHiresUpscaler(hiresRef) ? await chooseUpscaler(hiresRef, '--hires-upscaler', options) : undefined;
    const model = await models.get(key)!;
    const control = resolved.settings.control.length ? await chooseControlNets(resolved.settings.control, readModelFiles(model.dir), options) : [];
    const loras = await chooseRegistryLoras(job.prompt, resolved.settings.loraDir, model.dir, options);
    const withLoraAdvice = loras.recommended ? { ...model, recommended: loras.recommended } : model;
    const prepared = await prepareGeneration(command, { ...resolved, settings: { ...resolved.settings, control } }, withLoraAdvice, refiner, hiresUpscaler);
    checkRequest(prepared.files, prepared.request(job.prompt, 0));
    if (!flags.quiet) for (const note of prepared.task?.notes ?? []) process.stderr.write(`note: ${note}\n`);
    const withParts = await withSdUpscaler(await withVaes(withPromptNetworks(prepared, job.prompt, loras.files), Boolean(flags.quiet)), Boolean(flags.quiet));
    planned.push({ index: i, prompt: job.prompt, prepared: withParts, preview: previewOf(prepared.settings) });
  }
  for (const group of loadGroups(planned)) {
    const bundle = await loadModel(group.modelDir, {
      ...group.load,
      // Between prompts the text encoder is needed again: keep it open there.
      parkTextEncoder: jobs.length === 1,
      ...(flags.quiet ? {} : { onNote: (message: string) => process.stderr.write(`${message}\n`) }),
      // Only the embeddings these prompts name are read.
      embeddingPrompts: group.jobs.flatMap((j) => [j.prompt, j.prepared.settings.negativePrompt]),
      onWarning: (message: string) => process.stderr.write(`warning: ${terminalText(message)}\n`),
    });
    if (input.recordedLoras) warnLoraHashes(bundle.loras, input.recordedLoras);
    try {
      for (const { index, prompt, prepared, preview } of group.jobs) {
        const { settings } = prepared;
        // A given --seed holds for every prompt (their images compare); otherwise each draws its own.
        const request = prepared.request(prompt, settings.seed ?? randomSeed());
        warnMissingEmbeddings(bundle, [prompt, settings.negativePrompt], settings.embeddingsDir);
        const label = settings.batchCount > 1 ? 'batch' : prepared.task && request.outpaint ? 'outpaint' : 'sampling';
        const previews = preview && previewFile(bundle, prepared.files, preview.path, preview.every);
        await runBatches(bundle, request, settings, label, Boolean(flags.quiet), sink.writerFor(index, settings), previews);
      }
    } finally {
      await bundle.release();
    }
  }
  await sink.finish();
}

/** --xyz (txt2img, img2img, inpaint): the plot's tiles, checked before anything else. */
function xyzPlanOf(input: GenerationInput): XyzPlan | undefined {
  const { xyz, xyzNoLabels, xyzKeepTiles } = input.flags;
  if (xyz === undefined) {
    if (xyzNoLabels || xyzKeepTiles) throw new UsageError(`${xyzNoLabels ? '--xyz-no-labels' : '--xyz-keep-tiles'} goes with --xyz`);
    return undefined;
  }
  if (input.jobs.length !== 1) throw new UsageError('--xyz plots one prompt: leave out --prompts-file');
  return parseXyz(String(xyz), input.command, input.jobs[0]!.prompt);
}

/** Each job's images to -o: a file target's names planned for the whole run, checked before any work. */
async function fileOutputs(settings: readonly Settings[], json: boolean): Promise<ImageSink> {
  const targets = await Promise.all(settings.map((s) => resolveOutputTarget(s.output)));
  const paths = await preflightOutputs(settings.map((s, i) => ({ target: targets[i]!, count: s.batchCount * s.batchSize, overwrite: s.overwrite })));
  return { writerFor: (job, s) => writer(targets[job]!, s, json, paths[job]), finish: async () => {} };
}

async function runBatches(bundle: ModelBundle, base: GenerationRequest, settings: Settings, label: string, quiet: boolean, write: Writer, preview?: Previewer): Promise<void> {
  const progress = progressView({ quiet });
  for (let batch = 0; batch < settings.batchCount; batch++) {
    // Which provider runs the steps (what --device auto chose): the bar's and the log line's label say it.
    const listener = progress.listener(`${label === 'batch' ? `batch ${batch + 1}/${settings.batchCount}` : label} on ${bundle.provider}`);
    let result: GenerationResult;
    try {
      result = await generate(bundle, nthBatch(base, batch), preview ? preview.listener(listener) : listener);
    } catch (err) {
      // The model is released after this: no preview may still be decoding then.
      await preview?.finish().catch(() => {});
      throw err;
    } finally {
      progress.stop();
    }
    await write(result.images, result.timings, batch * settings.batchSize, batch);
    await preview?.finish();
  }
}

/**
 * --vae and --preview's decoder resolved to folders of ONNX graphs (pulled or converted on first
 * use) before any model loads; the load options then name those folders, so jobs that chose the
 * same VAE share a load.
 */
async function withVaes(prepared: PreparedGeneration, quiet: boolean): Promise<PreparedGeneration> {
  const { settings, files } = prepared;
  const vae = settings.vae ? await chooseVae(settings.vae, { offline: settings.offline, yes: settings.yes, quiet, scalingFactor: files.vaeScalingFactor }) : undefined;
  if (settings.vaeTiling && vae?.tiny) throw new UsageError('--vae-tiling does not apply to TAESD (it decodes a 1024x1024 image in well under a gigabyte); leave it out');
  const preview = settings.preview ? await previewSource(settings, files, vae, quiet) : undefined;
  const load = { ...prepared.load, ...(preview?.dir ? { previewVae: preview.dir } : {}) };
  if (vae) load.vae = vae.dir;
  return { ...prepared, load };
}

/** --sd-upscale-upscaler naming a model: resolved (a registry upscaler is pulled as models are) and opened beside the model. */
async function withSdUpscaler(prepared: PreparedGeneration, quiet: boolean): Promise<PreparedGeneration> {
  const sd = prepared.task?.fields.sdUpscale;
  if (sd?.upscaler.kind !== 'model') return prepared;
  const { settings } = prepared;
  const chosen = await chooseUpscaler(sd.upscaler.name, '--sd-upscale-upscaler', { offline: settings.offline, yes: settings.yes, quiet });
  const upscaler = { kind: 'model' as const, name: chosen.name };
  const request = (prompt: string, seed: number): GenerationRequest => {
    const r = prepared.request(prompt, seed);
    return { ...r, sdUpscale: { ...r.sdUpscale!, upscaler } };
  };
  return { ...prepared, request, load: { ...prepared.load, upscaler: chosen.path } };
}

function previewOf(settings: Settings): PlannedJob['preview'] {
  return settings.preview ? { path: settings.preview, every: settings.previewEvery } : undefined;
}

/**
 * --preview: TAESD's decoder when --vae is TAESD or (auto, taesd) one is installed for the model's
 * latents, else ComfyUI's latent-to-RGB factors. `dir` is a TAESD folder to load beside the model.
 */
async function previewSource(settings: Settings, files: ModelFiles, vae: ChosenVae | undefined, quiet: boolean): Promise<{ dir?: string }> {
  if (settings.previewMethod === 'latent2rgb') return {};
  if (vae?.tiny) return { dir: vae.dir };
  const installed = await installedTaesd(files.vaeScalingFactor, quiet);
  if (installed) return { dir: installed.dir };
  if (settings.previewMethod === 'taesd') {
    const id = taesdIdFor(files.vaeScalingFactor);
    throw new UsageError(`--preview-method taesd: ${id} is not installed; run \`diffuse models pull ${id}\` (or use --preview-method latent2rgb)`);
  }
  return {};
}

/** Previews written over one PNG, atomically: a reader sees the last complete picture or the next. */
function previewFile(bundle: ModelBundle, files: ModelFiles, path: string, every: number): Previewer {
  return previewer({
    every,
    ...(bundle.previewDecoder ? { decoder: bundle.previewDecoder } : {}),
    latentFormat: isSdxlLatents(files.vaeScalingFactor) ? 'sdxl' : 'sd15',
    onImage: async (image) => {
      await writeFileAtomic(path, await encodePng(image, []), { ifExists: 'overwrite' });
    },
  });
}

/** `paths`: a file target's names for this prompt's images (planned for the whole run), else the folder's template. */
function writer(target: OutputTarget, settings: Settings, json: boolean, paths: readonly string[] | undefined): Writer {
  return async (images, timings, firstIndex, batch) => {
    const outputs = paths
      ? images.map((_, i) => ({ path: paths[firstIndex + i]!, ifExists: settings.overwrite ? ('overwrite' as const) : ('error' as const) }))
      : planOutputs(target, images.map((img, i) => nameVars(img, firstIndex + i, batch)), { overwrite: settings.overwrite });
    for (const [i, image] of images.entries()) {
      const planned = outputs[i]!;
      const bytes = await encodeImage(image.image, imageFormatOf(planned.path) ?? 'png', { parameters: metadataInfotext(image.metadata), quality: settings.quality });
      const path = await writeFileAtomic(planned.path, bytes, { ifExists: planned.ifExists });
      process.stdout.write(json ? `${JSON.stringify({ path, seed: image.seed, ...(image.metadata.safetyCheck ? { nsfw: image.metadata.safetyCheck.nsfw } : {}), parameters: image.metadata, timings })}\n` : `${path}\n`);
    }
  };
}

/** A word that looks like an embedding trigger (A1111 users write "embedding:name" or the bare name) but is not loaded. */
function warnMissingEmbeddings(bundle: ModelBundle, prompts: string[], dir: string | undefined): void {
  const loaded = new Set(Object.keys(bundle.embeddingHashes));
  for (const prompt of prompts) {
    for (const match of prompt.matchAll(/embedding:([\w.-]+)/g)) {
      if (!loaded.has(match[1]!)) process.stderr.write(`warning: embedding '${match[1]}' is not in ${dir ?? 'any --embeddings-dir'}; the prompt uses its name as plain text\n`);
    }
  }
}

/** --from: each LoRA the image records should load with the same hash (A1111 writes names without ':' and ','). */
function warnLoraHashes(loaded: ModelBundle['loras'], recorded: Record<string, string>): void {
  const byName = new Map(loaded.map((l) => [l.name.replace(/[:,]/g, ''), l.hash]));
  for (const [name, hash] of Object.entries(recorded)) {
    const found = byName.get(name);
    if (found === undefined) process.stderr.write(`warning: the image used LoRA ${name} (hash ${hash}), which this run does not load\n`);
    else if (found !== hash) process.stderr.write(`warning: LoRA ${name} here has hash ${found}, the image was made with ${hash}: another version of the file, so the image will differ\n`);
  }
}
