import { UsageError } from '../errors.js';
import { readGenerationMetadataFile } from '../image/metadata.js';
import { recordedSettings, type RecordedControl } from '../image/infotext.js';
import { PROCESSOR_RES_MAX, PROCESSOR_RES_MIN } from '../image/preprocess/processor-resolution.js';
import { PIXEL_PERFECT, RES_TYPES, controlTypeOf } from '../settings/control-spec.js';
import { HIRES_UPSCALER_LABELS } from '../pipeline/metadata.js';
import { loadRegistry } from '../models/index.js';

/** A1111's RNG names; "GPU" (its default, CUDA's generator) is closest to the Philox source that emulates it. */
const RNG_NAMES: Record<string, string> = { CPU: 'cpu', NV: 'philox', GPU: 'philox' };

/**
 * Settings both writers (diffuse and A1111) leave out when they are at their defaults: an image
 * without them was made with those defaults, so --from takes the defaults, not the config file's.
 */
const OMITTED_AT_DEFAULT = [
  'negativePrompt', 'schedule', 'clipSkip', 'ensd', 'deepCache', 'tokenMerging', 'eta', 'cfgRescale', 'variationSeed', 'variationStrength', 'promptWeighting',
  'quantize', 'int8Format', 'sdeNoise', 'sigmaTable', 'seedMode', 'watermark', 'safetyChecker', 'safetyAction',
  'hiresScale', 'hiresSize', 'hiresUpscaler', 'hiresSteps', 'hiresStrength', 'hiresPrompt', 'hiresNegative', 'hiresSampler', 'hiresSchedule', 'hiresCfg',
] as const;

/**
 * The settings recorded in a PNG (written by diffuse or AUTOMATIC1111) as raw flag values, for
 * `--from`: flags given on the command line still win; keys the writer leaves out at their default
 * are present as undefined (the default), so a config file does not stand in for them.
 */
export async function flagsFromImage(path: string): Promise<{ prompt: string; flags: Record<string, unknown>; notes: string[]; loraHashes?: Record<string, string> }> {
  const meta = readGenerationMetadataFile(path, '--from');
  if (meta.kind !== 'a1111') throw new UsageError(`--from: ${path} carries no A1111-style parameters to re-run`);
  const p = recordedSettings(meta.parameters);
  const flags: Record<string, unknown> = {};
  const notes: string[] = [];
  const set = (key: string, value: unknown) => {
    if (value !== undefined) flags[key] = value;
  };
  set('negativePrompt', p.negativePrompt || undefined);
  set('steps', p.steps);
  set('cfgScale', p.cfgScale);
  set('seed', p.seed);
  set('width', p.width);
  set('height', p.height);
  set('sampler', p.sampler);
  set('schedule', p.scheduleType);
  set('variationSeed', p.variation?.seed);
  set('variationStrength', p.variation?.strength);
  set('eta', p.eta);
  set('cfgRescale', p.cfgRescale);
  set('seedMode', p.seedMode);
  set('quantize', p.quantization?.mode);
  // u8s8 and u8u8 are the same integer arithmetic where each runs exactly (VNNI; every x86), so
  // only the 7-bit u8s7, which rounds differently, is restored; the others leave it to this CPU.
  set('int8Format', p.quantization?.format === 'u8s7' ? 'u8s7' : undefined);
  set('sdeNoise', p.sdeNoise);
  set('sigmaTable', p.sigmaTable);
  set('watermark', p.watermark === 'sdxl' ? true : p.watermark?.startsWith('text=') ? p.watermark.slice(5) : undefined);
  set('safetyChecker', p.safetyCheck ? true : undefined);
  set('safetyAction', p.safetyCheck?.action === 'blur' ? 'blur' : undefined);
  set('ensd', p.ensd);
  set('deepCache', p.deepCache);
  set('tokenMerging', p.tokenMerging);
  set('clipSkip', p.clipSkip);
  set('promptWeighting', p.promptWeighting);
  const hires = p.hires;
  if (hires) {
    set('hiresScale', hires.scale);
    set('hiresSize', hires.resize ? `${hires.resize.width}x${hires.resize.height}` : undefined);
    const upscaler = hiresUpscalerOf(hires.upscaler);
    set('hiresUpscaler', upscaler);
    if (hires.upscaler !== undefined && !upscaler) notes.push(`the image's hires upscaler "${hires.upscaler}" is neither built in nor in the registry; the default (latent) stands in: pass --hires-upscaler (an upscaler id or .onnx file) to choose`);
    set('hiresSteps', hires.steps);
    set('hiresStrength', hires.strength);
    set('hiresPrompt', hires.prompt);
    set('hiresNegative', hires.negativePrompt);
    set('hiresSampler', hires.sampler);
    set('hiresSchedule', hires.scheduleType);
    set('hiresCfg', hires.cfgScale);
  }
  const rng = RNG_NAMES[p.rng];
  set('rng', rng);
  for (const key of OMITTED_AT_DEFAULT) if (!(key in flags)) flags[key] = undefined;
  if (p.rng === 'GPU') notes.push("the image used A1111's GPU noise; --rng philox reproduces it within float32 rounding");
  if (p.vaeDecoder === 'TAESD') notes.push('the image was decoded with TAESD; pass --vae taesd (taesdxl for SDXL) to decode with it');
  if (p.vae?.name) notes.push(`the image was decoded with VAE "${p.vae.name}"${p.vae.hash ? ` (hash ${p.vae.hash})` : ''}; pass --vae to choose it`);
  if (p.refiner) {
    const at = p.refiner.switchAt !== undefined ? ` --refiner-switch ${p.refiner.switchAt}` : '';
    notes.push(`the image was refined with "${p.refiner.title}"${p.refiner.switchAt !== undefined ? ` from ${p.refiner.switchAt} of the schedule` : ''}; pass --refiner <that model>${at} to refine again`);
  }
  p.control?.forEach((c, i) => notes.push(`the image followed ControlNet ${i} "${c.model}" (${c.module}); pass --control ${controlFlag(c)}`));
  if (p.initLatentsHash) notes.push(`the image started from given latents (file hash ${p.initLatentsHash}), not its seed's noise; pass --latents <that .npy> to start from them again`);
  if (p.model?.name) notes.push(`the image was made with model "${p.model.name}"${p.model.hash ? ` (hash ${p.model.hash})` : ''}; pass --model to choose it`);
  return { prompt: p.prompt, flags, notes, ...(p.loraHashes ? { loraHashes: p.loraHashes } : {}) };
}

/**
 * The --control value that repeats a recorded unit: A1111 records neither the picture nor the
 * model's path, so the picture is left for the user to fill in, and the model too unless its
 * recorded name ("control_v11p_sd15_canny [d14c016b]", as A1111 names lllyasviel's files) is a
 * registry ControlNet's id; a module diffuse does not run is given as type=none (pass the
 * preprocessed picture). A network's file is not recorded either: without detector= the type's
 * registry network is used.
 */
function controlFlag(c: RecordedControl): string {
  const type = controlTypeOf(c.module) ?? 'none';
  const name = c.model.replace(/\s*\[[0-9a-f]+\]$/i, '');
  const registered = loadRegistry().controlnets.find((m) => m.id === name);
  const fields = [`type=${type}`, 'image=<picture>', `model=${registered?.id ?? '<ControlNet folder>'}`];
  if (c.weight !== undefined) fields.push(`weight=${c.weight}`);
  if (c.start !== undefined) fields.push(`start=${c.start}`);
  if (c.end !== undefined) fields.push(`end=${c.end}`);
  if (c.guess) fields.push('guess');
  if (c.resize) fields.push(`resize=${c.resize}`);
  if (type === 'canny' && c.thresholdA !== undefined) fields.push(`low=${c.thresholdA}`);
  if (type === 'canny' && c.thresholdB !== undefined) fields.push(`high=${c.thresholdB}`);
  if ((type === 'threshold' || type === 'scribble-xdog') && c.thresholdA !== undefined) fields.push(`level=${c.thresholdA}`);
  if (type === 'mlsd' && c.thresholdA !== undefined) fields.push(`value=${c.thresholdA}`);
  if (type === 'mlsd' && c.thresholdB !== undefined) fields.push(`distance=${c.thresholdB}`);
  // The extension writes -1 for a module without the slider: only a resolution res= takes is given back. With Pixel
  // Perfect it records the slider's value from before it computed the one it used (from the picture and the painted
  // size), so res=pixel-perfect computes it again.
  const res = c.processorRes;
  if (c.pixelPerfect && RES_TYPES.includes(type)) fields.push(`res=${PIXEL_PERFECT}`);
  else if (res !== undefined && RES_TYPES.includes(type) && Number.isInteger(res) && res >= PROCESSOR_RES_MIN && res <= PROCESSOR_RES_MAX) fields.push(`res=${res}`);
  return fields.join(',');
}

/**
 * Our id for an upscaler name as A1111 writes it ("Latent (nearest-exact)", "R-ESRGAN 4x+") or as we
 * spell it: a built-in one, or a registry upscaler of that name.
 */
function hiresUpscalerOf(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const wanted = name.trim().toLowerCase();
  const builtin = (Object.keys(HIRES_UPSCALER_LABELS) as (keyof typeof HIRES_UPSCALER_LABELS)[]).find((id) => id === wanted || HIRES_UPSCALER_LABELS[id].toLowerCase() === wanted);
  return builtin ?? loadRegistry().upscalers.find((u) => u.id === wanted || u.name.toLowerCase() === wanted)?.id;
}
