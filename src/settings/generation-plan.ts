import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { SDXL_WATERMARK_BITS, bitsFromText } from '../image/watermark/payload.js';
import { cacheRoot, type Recommended, type RegistryEntry, type Task } from '../models/index.js';
import { checkRequest } from '../pipeline/check-request.js';
import { readClipProcessor, safetyCheckerFiles } from '../pipeline/safety-checker.js';
import { DEFAULT_REFINER_SWITCH } from '../pipeline/tasks/refiner.js';
import { pictureInRegion } from '../pipeline/tasks/control-region.js';
import { maskedRegion } from '../pipeline/tasks/inpaint.js';
import type { Raster } from '../image/raster.js';
import type { ResizeMode } from '../image/resize-modes.js';
import type { LoadOptions } from '../pipeline/load.js';
import { readModelFiles, type ModelFiles } from '../pipeline/model-files.js';
import type { GenerationRequest, HiresFix } from '../pipeline/types.js';
import { randomSeed } from '../rng/index.js';
import { resolveSampler, UnknownSamplerError } from '../schedulers/index.js';
import type { ResolvedSettings, SettingSource } from './config.js';
import { flagName, isBuiltinHiresUpscaler, optionSpec, type GeneratingCommand, type SettingKey, type Settings } from './options.js';
import { promptNetworks } from './networks.js';
import { readImageTask, type ImageTask } from './request.js';
import { readControlUnits } from './control-units.js';
import { readLatentsFile } from './latents-file.js';

/** The registry's task a subcommand needs a model for (outpainting is inpainting). */
export const MODEL_TASK: Record<GeneratingCommand, Task> = { txt2img: 'txt2img', img2img: 'img2img', inpaint: 'inpaint', outpaint: 'inpaint', depth2img: 'depth2img' };

/**
 * Settings and a model folder turned into what the pipeline takes: the requests of a run (one per
 * prompt and seed) and how to load the model for them. Every generating path (the subcommands,
 * --prompts-file lines, build manifests) goes through here, so a setting means the same everywhere.
 */
export interface PreparedGeneration {
  /** The settings with the model's recommendations standing in for values nobody set. */
  settings: Settings;
  files: ModelFiles;
  /** The files of img2img, inpaint, outpaint and depth2img, read once. */
  task: ImageTask | undefined;
  request(prompt: string, seed: number): GenerationRequest;
  modelDir: string;
  /** Everything loadModel needs but the caller's own choices (parkTextEncoder, onNote). */
  load: LoadOptions;
}

/**
 * `model.recommended`: what the prompt's registry LoRAs recommend (a distillation LoRA's sampler, steps, CFG), before the
 * model's own recommendation. `refiner`: the folder --refiner names (resolved by the caller, as the model is), loaded
 * beside the model; its switch goes into every request.
 */
export async function prepareGeneration(
  command: GeneratingCommand,
  resolved: Pick<ResolvedSettings, 'settings' | 'sources'> & Partial<Pick<ResolvedSettings, 'configPath'>>,
  model: { dir: string; entry?: RegistryEntry; recommended?: Recommended },
  refiner?: { dir: string },
  hiresUpscaler?: { path: string; name: string },
): Promise<PreparedGeneration> {
  const files = readModelFiles(model.dir);
  const settings = withRecommended(resolved.settings, resolved.sources, model.recommended ?? model.entry?.recommended ?? folderRecommendation(files));
  const sampling = resolveSampling(settings, (key) => samplingLabel(resolved, key));
  const refinerSwitch = refinerSwitchOf(settings, refiner);
  const task = await readImageTask(command, settings, files);
  const session = { device: settings.device, ...(settings.threads ? { threads: settings.threads } : {}) };
  const native = files.sampleSize * files.vaeScaleFactor;
  const latents = settings.latents ? await readLatentsFile(settings.latents, files, settings) : undefined;
  const size = { width: task?.width ?? latents?.width ?? settings.width ?? native, height: task?.height ?? latents?.height ?? settings.height ?? native };
  const control = settings.control.length ? { control: await readControlUnits(settings.control, model.dir, session, size, controlRegion(task, size)) } : {};
  const hires = hiresOf(settings, resolved.sources, (key) => samplingLabel(resolved, key), hiresUpscaler);
  const request = (prompt: string, seed: number): GenerationRequest => ({ ...baseRequest(settings, prompt, seed), ...sampling, ...size, ...task?.fields, ...refinerSwitch, ...control, ...latents?.field, ...hires });
  checkRequest(files, request('', 0));
  if (settings.safetyChecker) readClipProcessor(safetyCheckerFiles(files.dir).processor);
  const load = loadOptions(settings, task);
  // The folders the units name: a converted ControlNet's is in the cache, not what --control gave.
  if (control.control) load.controlnets = [...new Set(control.control.map((u) => u.model))];
  // An image upscaler decodes the first pass and encodes the upscaled picture again.
  const upscaler = hires.hires?.upscaler;
  if (upscaler && !(typeof upscaler === 'string' && upscaler.startsWith('latent'))) load.withEncoder = true;
  if (upscaler && typeof upscaler !== 'string') load.upscaler = upscaler.model;
  return { settings, files, task, request, modelDir: model.dir, load: { ...load, ...(refiner ? { refiner: refiner.dir } : {}) } };
}

/** An "only masked" inpaint's cut of a unit's picture (tasks/control-region.ts), or undefined for every other task. */
function controlRegion(task: ImageTask | undefined, painted: { width: number; height: number }): ((picture: Raster, mode: ResizeMode | undefined) => Raster) | undefined {
  const { init, mask } = task?.fields ?? {};
  if (!init || mask?.area !== 'masked') return undefined;
  const box = maskedRegion(init.image, mask, painted);
  return (picture, mode) => pictureInRegion(picture, mode, init.image, box, painted);
}

const HIRES_KEYS = ['hiresUpscaler', 'hiresSteps', 'hiresStrength', 'hiresPrompt', 'hiresNegative', 'hiresSampler', 'hiresSchedule', 'hiresCfg'] as const;

/**
 * --hires-scale or --hires-size turns the hires fix on (not both); the other --hires-* flags only
 * shape it, so one given without them is a mistake. A config file's or an image's values are
 * defaults and apply only when the fix is on.
 */
function hiresOf(
  settings: Settings,
  sources: Record<SettingKey, SettingSource>,
  labelOf: (key: 'sampler' | 'schedule') => string,
  model: { path: string; name: string } | undefined,
): Pick<GenerationRequest, 'hires'> {
  const { hiresScale, hiresSize } = settings;
  if (hiresScale !== undefined && hiresSize !== undefined) {
    throw new UsageError('--hires-scale and --hires-size both size the hires fix: pass one of them');
  }
  if (hiresScale === undefined && hiresSize === undefined) {
    const given = HIRES_KEYS.find((k) => sources[k] === 'flag');
    if (given) throw new UsageError(`${flagName(optionSpec(given))} shapes the hires fix, which --hires-scale or --hires-size turns on: pass one of them`);
    return {};
  }
  const sampling =
    settings.hiresSampler !== undefined || settings.hiresSchedule !== undefined
      ? {
          sampling: resolveSampling({ ...settings, sampler: settings.hiresSampler ?? settings.sampler, schedule: settings.hiresSchedule ?? (settings.hiresSampler === undefined ? settings.schedule : undefined) }, (key) =>
            key === 'sampler' && settings.hiresSampler !== undefined ? '--hires-sampler' : key === 'schedule' && settings.hiresSchedule !== undefined ? '--hires-schedule' : labelOf(key),
          ),
        }
      : {};
  return {
    hires: {
      target: hiresScale !== undefined ? { scale: hiresScale } : hiresSize!,
      upscaler: hiresUpscalerOf(settings.hiresUpscaler, model),
      strength: settings.hiresStrength,
      ...(settings.hiresSteps > 0 ? { steps: settings.hiresSteps } : {}),
      ...(settings.hiresPrompt ? { prompt: settings.hiresPrompt } : {}),
      ...(settings.hiresNegative ? { negativePrompt: settings.hiresNegative } : {}),
      ...(settings.hiresCfg !== undefined ? { cfgScale: settings.hiresCfg } : {}),
      ...sampling,
    },
  };
}

function refinerSwitchOf(settings: Settings, refiner: { dir: string } | undefined): Pick<GenerationRequest, 'refinerSwitch'> {
  if (!refiner) {
    if (settings.refinerSwitch !== undefined) throw new UsageError('--refiner-switch needs --refiner: name the model that takes over (the SDXL refiner)');
    return {};
  }
  return { refinerSwitch: settings.refinerSwitch ?? DEFAULT_REFINER_SWITCH };
}

function loadOptions(settings: Settings, task: ImageTask | undefined): LoadOptions {
  return {
    device: settings.device,
    withEncoder: Boolean(task),
    withDepthEstimator: Boolean(task?.depthEstimator),
    clipSkip: settings.clipSkip,
    clipSkipReading: settings.promptWeighting,
    fuseAttention: settings.attention === 'fused',
    conv: settings.conv,
    ...(settings.deepCache > 1 ? { deepCache: true } : {}),
    ...(settings.tokenMerging > 0 ? { tokenMerging: settings.tokenMerging } : {}),
    quantize: settings.quantize,
    ...(settings.int8Format !== 'auto' ? { int8Format: settings.int8Format } : {}),
    ...(settings.optimizedCache !== 'off' ? { optimizedCache: settings.optimizedCache || join(cacheRoot(), 'optimized') } : {}),
    ...(settings.embeddingsDir ? { embeddingsDir: settings.embeddingsDir } : {}),
    ...(settings.vae ? { vae: settings.vae } : {}),
    ...(settings.safetyChecker ? { withSafetyChecker: true } : {}),
    ...(settings.threads ? { threads: settings.threads } : {}),
  };
}

/**
 * The load a prompt needs: its <lora:…> and <hypernet:…> tags change weights, so they are load options, not request
 * fields. `registryLoras`: the pulled registry LoRAs it names, by id.
 */
export function withPromptNetworks(prepared: PreparedGeneration, prompt: string, registryLoras?: ReadonlyMap<string, string>): PreparedGeneration {
  const { loras, hypernetworks } = promptNetworks(prompt, prepared.settings, registryLoras);
  if (!loras.length && !hypernetworks.length) return prepared;
  return { ...prepared, load: { ...prepared.load, ...(loras.length ? { loras } : {}), ...(hypernetworks.length ? { hypernetworks } : {}) } };
}

/** Jobs that one loaded model serves, in the order they first appear, and the load that serves them all. */
export interface LoadGroup<T> {
  modelDir: string;
  load: LoadOptions;
  jobs: T[];
}

/**
 * Jobs grouped by the model load they need, so each model loads once: what differs only in the parts
 * to open (the VAE encoder, the depth estimator) shares one load that opens every part any job needs.
 */
export function loadGroups<T extends { prepared: PreparedGeneration }>(jobs: readonly T[]): LoadGroup<T>[] {
  const groups = new Map<string, LoadGroup<T>>();
  for (const job of jobs) {
    const { withEncoder, withDepthEstimator, ...shared } = job.prepared.load;
    const key = JSON.stringify([job.prepared.modelDir, Object.entries(shared).sort(([a], [b]) => a.localeCompare(b))]);
    const group = groups.get(key) ?? { modelDir: job.prepared.modelDir, load: { ...shared }, jobs: [] };
    group.load = { ...group.load, withEncoder: Boolean(group.load.withEncoder || withEncoder), withDepthEstimator: Boolean(group.load.withDepthEstimator || withDepthEstimator) };
    group.jobs.push(job);
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** The settings every request of a run shares, before the sampler and the task's fields. */
function baseRequest(settings: Settings, prompt: string, seed: number): Omit<GenerationRequest, 'sampler' | 'schedule' | 'width' | 'height'> {
  return {
    prompt,
    negativePrompt: settings.negativePrompt,
    promptWeighting: settings.promptWeighting,
    condPadding: settings.padCond,
    steps: settings.steps,
    cfgScale: settings.cfgScale,
    cfgRescale: settings.cfgRescale,
    seed,
    rng: settings.rng,
    seedMode: settings.seedMode,
    sdeNoise: settings.sdeNoise,
    ...(settings.eta !== undefined ? { eta: settings.eta } : {}),
    ...(settings.ensd > 0 ? { ensd: settings.ensd } : {}),
    ...(settings.deepCache > 1 ? { deepCache: settings.deepCache } : {}),
    ...(settings.variationStrength > 0 ? { variation: { seed: settings.variationSeed ?? randomSeed(), strength: settings.variationStrength } } : {}),
    batchSize: settings.batchSize,
    vaeTiling: settings.vaeTiling,
    ...(settings.watermark === false ? {} : { watermark: watermarkOf(settings.watermark) }),
    ...(settings.safetyChecker ? { safetyCheck: settings.safetyAction } : {}),
  };
}

function watermarkOf(setting: true | string): NonNullable<GenerationRequest['watermark']> {
  return setting === true ? { bits: SDXL_WATERMARK_BITS, label: 'sdxl' } : { bits: bitsFromText(setting), label: `text=${setting}` };
}

/** How a message names where the sampler or schedule came from: its flag, the config file's key, or the model's recommendation. */
export function samplingLabel(resolved: Pick<ResolvedSettings, 'sources'> & Partial<Pick<ResolvedSettings, 'configPath'>>, key: 'sampler' | 'schedule'): string {
  switch (resolved.sources[key]) {
    case 'flag':
      return `--${key}`;
    case 'config':
      return `${key} in ${resolved.configPath ?? 'the config file'}`;
    case 'image':
      return `the ${key} the --from image records`;
    default:
      return `the recommended ${key}`;
  }
}

/** --sampler and --schedule to the request's ids and noise table, refused in one line (naming where the value came from) when unknown. */
export function resolveSampling(settings: Settings, labelOf: (key: 'sampler' | 'schedule') => string = (key) => `--${key}`): Pick<GenerationRequest, 'sampler' | 'schedule' | 'discardPenultimateSigma' | 'noiseTable'> {
  try {
    const r = resolveSampler(settings.sampler, settings.schedule);
    return { sampler: r.sampler, schedule: r.schedule, discardPenultimateSigma: r.discardPenultimateSigma, noiseTable: settings.sigmaTable === 'auto' ? r.noiseTable : settings.sigmaTable };
  } catch (err) {
    if (err instanceof UnknownSamplerError) {
      const flag = labelOf(err.kind === 'sampler' ? 'sampler' : 'schedule');
      throw new UsageError(`${flag}: unknown ${err.kind} '${err.input}' (try: ${err.valid.slice(0, 20).join(', ')}${err.valid.length > 20 ? ', ...' : ''})`, { cause: err });
    }
    throw err;
  }
}

/**
 * What a model folder says about itself where the registry does not: an LCM-distilled model
 * (its scheduler is LCMScheduler) wants the lcm sampler, few steps and its embedded guidance.
 */
export function folderRecommendation(files: ModelFiles): RegistryEntry['recommended'] | undefined {
  const scheduler = files.modelIndex.scheduler;
  const cls = Array.isArray(scheduler) ? scheduler[1] : undefined;
  return cls === 'LCMScheduler' ? { sampler: 'lcm', schedule: 'normal', steps: 4, cfg: 8 } : undefined;
}

/** Recommended sampler, schedule, steps and CFG stand in for values the user did not set. */
export function withRecommended(settings: Settings, sources: Record<SettingKey, SettingSource>, r: RegistryEntry['recommended'] | undefined): Settings {
  if (!r) return settings;
  const out = { ...settings };
  if (sources.sampler === 'default') {
    out.sampler = r.sampler;
    if (sources.schedule === 'default') out.schedule = r.schedule;
  }
  if (sources.steps === 'default') out.steps = r.steps;
  if (sources.cfgScale === 'default') out.cfgScale = r.cfg;
  return out;
}

/** A built-in upscaler, or the model upscaler the command resolved the name to. */
function hiresUpscalerOf(name: string, model: { path: string; name: string } | undefined): HiresFix['upscaler'] {
  if (isBuiltinHiresUpscaler(name)) return name;
  if (!model) throw new UsageError(`--hires-upscaler ${name}: a model upscaler is resolved by txt2img (not here); pass a built-in one (latent, lanczos, …)`);
  return { model: model.path, name: model.name };
}
