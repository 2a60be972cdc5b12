import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { fitToSize } from '../image/resize-modes.js';
import type { Raster } from '../image/raster.js';
import type { ModelBundle } from './bundle.js';
import type { LoadedControlNet } from './controlnet.js';
import type { AddedConditioning } from './text-encoder.js';
import type { ControlUnit, GenerationRequest, PassRequest } from './types.js';
import type { Residual } from './unet.js';

/**
 * The residuals of every ControlNet unit for one UNet call: the UNet's input [n, C, h, w] (its first
 * latentChannels channels are what the ControlNets read, as diffusers' inpaint pipeline hands them
 * the latents without mask and masked picture), the timestep, the denoiser call's number, the
 * batched text conditioning [n, tokens, width] (with SDXL's added conditioning, [n, pooled] and
 * [n, time ids]) and which of its groups of equal size are the negative prompt's. Undefined when no
 * unit runs at this call (the UNet then adds zeros).
 */
export type ControlStep = (
  sample: Float32Array,
  dims: readonly [number, number, number, number],
  t: number,
  call: number,
  context: Float32Array,
  contextDims: readonly [number, number, number],
  uncond: readonly boolean[],
  added?: AddedConditioning,
) => Promise<Residual[] | undefined>;

const f32 = Math.fround;

/** The loaded ControlNet a unit names, or a usage error saying what was loaded. */
export function controlNetFor(bundle: Pick<ModelBundle, 'controlNets'>, model: string): LoadedControlNet {
  const hit = bundle.controlNets?.find((c) => resolve(c.dir) === resolve(model));
  if (hit) return hit;
  const loaded = bundle.controlNets?.map((c) => c.dir).join(', ');
  throw new UsageError(`ControlNet ${model} was not loaded with the model (${loaded ? `loaded: ${loaded}` : 'none was'}); pass its folder in the load options`);
}

/** Field values diffusers refuses too, and models the units cannot go with. */
export function checkControl(bundle: ModelBundle, request: GenerationRequest): void {
  const units = request.control ?? [];
  if (units.length === 0) return;
  const inputs = bundle.unet.residualInputs.length;
  units.forEach((unit, i) => {
    const label = `ControlNet ${i}`;
    const { net, name } = controlNetFor(bundle, unit.model);
    if (net.sdxl !== (bundle.unet.added !== undefined)) {
      const [cn, model] = net.sdxl ? ['an SDXL ControlNet', 'an SD 1.x/2.x model'] : ['an SD 1.x/2.x ControlNet', 'an SDXL model'];
      throw new UsageError(`${label} (${name}) is ${cn} and ${bundle.name} is ${model}: use a ControlNet made for ${net.sdxl ? 'SD 1.x/2.x' : 'SDXL'}`);
    }
    if (inputs === 0) {
      throw new UsageError(`${bundle.name}'s UNet takes no ControlNet residuals: ControlNet needs a model whose unet/model.onnx was exported with down_block_additional_residual_* and mid_block_additional_residual inputs`);
    }
    if (net.residualCount !== inputs) throw new UsageError(`${label} (${unit.model}) makes ${net.residualCount} residuals; ${bundle.name}'s UNet takes ${inputs}: use a ControlNet of this model's family`);
    const [cnText, unetText] = [net.contextWidth, bundle.unet.contextWidth];
    if (cnText !== undefined && unetText !== undefined && cnText !== unetText) {
      throw new UsageError(`${label} (${unit.model}) reads ${cnText}-wide text (${cnText === 1024 ? 'SD 2.x' : cnText === 768 ? 'SD 1.x' : 'another family'}); ${bundle.name}'s UNet reads ${unetText}-wide: use a ControlNet of this model's family`);
    }
    if (!Number.isFinite(unit.weight)) throw new UsageError(`${label}: weight must be a finite number (got ${unit.weight})`);
    if (!(unit.start >= 0 && unit.start <= 1 && unit.end >= 0 && unit.end <= 1)) throw new UsageError(`${label}: start and end are fractions of the steps, 0…1 (got ${unit.start}, ${unit.end})`);
    if (unit.start >= unit.end) throw new UsageError(`${label}: start ${unit.start} must be below end ${unit.end}`);
  });
}

/**
 * diffusers' controlnet_keep: a unit runs at call i of n unless i / n < start or (i + 1) / n > end.
 * A unit that is kept out contributes zeros (diffusers runs it at scale 0), so it is not run.
 */
export function unitRuns(unit: Pick<ControlUnit, 'start' | 'end'>, call: number, calls: number): boolean {
  return !(call / calls < unit.start || (call + 1) / calls > unit.end);
}

/** torch.logspace(-1, 0, count) in float32: guess mode's per-residual scales, shallowest first. */
export function guessScales(count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = f32(10 ** (-1 + i / (count - 1)));
  return out;
}

/**
 * The control picture as diffusers' control image processor hands it to the ControlNet: brought to
 * the painted size (its default: PIL Lanczos stretch; A1111's crop and fill modes too), RGB as
 * float32 x / 255, CHW.
 */
export function controlImageTensor(image: Raster, width: number, height: number, mode: ControlUnit['resizeMode'] = 'just-resize'): Float32Array {
  const fitted = image.width === width && image.height === height ? image : fitToSize(image, width, height, mode);
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  const c = fitted.channels;
  for (let ch = 0; ch < 3; ch++) {
    for (let i = 0; i < plane; i++) out[ch * plane + i] = f32(fitted.data[i * c + Math.min(ch, c - 1)]! / 255);
  }
  return out;
}

/** The request's units as one step function for the loop, or undefined without units. */
export function controlStep(bundle: ModelBundle, request: PassRequest, calls: number): ControlStep | undefined {
  const units = request.control ?? [];
  if (units.length === 0) return undefined;
  const latentChannels = bundle.files.latentChannels;
  const prepared = units.map((unit) => ({ unit, net: controlNetFor(bundle, unit.model).net, image: controlImageTensor(unit.image, request.width, request.height, unit.resizeMode) }));
  return async (sample, dims, t, call, context, contextDims, uncond, added) => {
    const [n, channels, h, w] = dims;
    const per = n / uncond.length;
    let sum: Residual[] | undefined;
    for (const { unit, net, image } of prepared) {
      if (!unitRuns(unit, call, calls)) continue;
      // Guess mode under CFG: the ControlNet sees only the prompt's groups; the negative prompt's get zeros.
      const groups = uncond.flatMap((u, g) => (unit.guess && u ? [] : [g]));
      if (groups.length === 0) continue;
      const m = groups.length * per;
      const latents = new Float32Array(m * latentChannels * h * w);
      const ctx = new Float32Array(m * contextDims[1] * contextDims[2]);
      const perLatent = latentChannels * h * w;
      const perContext = contextDims[1] * contextDims[2];
      const rows = (values: Float32Array): Float32Array => new Float32Array(m * (values.length / n));
      const unitAdded = added && { textEmbeds: rows(added.textEmbeds), timeIds: rows(added.timeIds) };
      groups.forEach((g, k) => {
        for (let b = 0; b < per; b++) {
          const from = g * per + b;
          const to = k * per + b;
          latents.set(sample.subarray(from * channels * h * w, from * channels * h * w + perLatent), to * perLatent);
          ctx.set(context.subarray(from * perContext, (from + 1) * perContext), to * perContext);
          if (added && unitAdded) {
            for (const key of ['textEmbeds', 'timeIds'] as const) {
              const size = added[key].length / n;
              unitAdded[key].set(added[key].subarray(from * size, (from + 1) * size), to * size);
            }
          }
        }
      });
      const images = new Float32Array(m * image.length);
      for (let b = 0; b < m; b++) images.set(image, b * image.length);
      const guess = unit.guess === true;
      const out = await net.residuals(latents, [m, latentChannels, h, w], t, ctx, [m, contextDims[1], contextDims[2]], images, [m, 3, request.height, request.width], guess ? 1 : unit.weight, unitAdded);
      if (guess) {
        const scales = guessScales(out.length);
        out.forEach((r, i) => {
          const s = f32(scales[i]! * f32(unit.weight));
          for (let j = 0; j < r.data.length; j++) r.data[j] = r.data[j]! * s;
        });
      }
      const full = m === n ? out : out.map((r) => spread(r, groups, per, n));
      sum = sum ? sum.map((r, i) => add(r, full[i]!)) : full;
    }
    return sum;
  };
}

/** Residuals of some groups placed back among all n images, zeros elsewhere. */
function spread(r: Residual, groups: number[], per: number, n: number): Residual {
  const size = r.data.length / (groups.length * per);
  const data = new Float32Array(n * size);
  groups.forEach((g, k) => data.set(r.data.subarray(k * per * size, (k + 1) * per * size), g * per * size));
  return { data, dims: [n, r.dims[1], r.dims[2], r.dims[3]] };
}

/** MultiControlNetModel's sum, earlier units first. */
function add(a: Residual, b: Residual): Residual {
  const data = new Float32Array(a.data.length);
  for (let i = 0; i < data.length; i++) data[i] = a.data[i]! + b.data[i]!;
  return { data, dims: a.dims };
}
