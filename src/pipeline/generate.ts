import { ModelLoadError, UsageError } from '../errors.js';
import { checkRequest } from './check-request.js';
import { checkControl } from './control.js';
import { embedWatermark } from '../image/watermark/dwt-dct.js';
import type { ModelBundle } from './bundle.js';
import { denoisePass, type PassResult } from './denoise.js';
import { metadataFor } from './metadata.js';
import { censor, type SafetyChecker } from './safety-checker.js';
import { nthImage } from './seeds.js';
import { inpaintPass, withoutTasks, type PlannedPass } from './tasks/inpaint.js';
import { outpaintPlan } from './tasks/outpaint.js';
import { hiresPass } from './tasks/hires.js';
import { sdUpscale } from './tasks/sd-upscale.js';
import type { GeneratedImage, GenerationRequest, GenerationResult, HiresFix, PassRequest, PipelineListener, SafetyAction } from './types.js';

/**
 * The pipeline's one entry: a request (txt2img, or with an init picture, a mask, an outpaint
 * extension, a depth map) → its images, each with its metadata. Tasks are resolved here into
 * passes of the one denoising loop (denoise.ts): inpainting's mask handling and masked-area crop
 * (tasks/inpaint.ts), outpainting's passes (tasks/outpaint.ts), txt2img's hires fix (tasks/hires.ts),
 * img2img's SD upscale (tasks/sd-upscale.ts).
 */
export async function generate(bundle: ModelBundle, request: GenerationRequest, listener: PipelineListener = () => {}): Promise<GenerationResult> {
  checkRequest(bundle.files, request);
  checkUnetFits(bundle, request);
  checkControl(bundle, request);
  if (request.safetyCheck && !bundle.safetyChecker) {
    throw new UsageError('the request asks for the safety checker, which this model was loaded without: load it with withSafetyChecker (the CLI: --safety-checker)');
  }
  const painted = await unmarked(bundle, request, listener);
  const result = request.safetyCheck ? await safetyChecked(bundle.safetyChecker!, painted, request.safetyCheck) : painted;
  const mark = request.watermark;
  if (!mark) return result;
  return { ...result, images: result.images.map((img) => ({ ...img, image: embedWatermark(img.image, mark.bits) })) };
}

async function unmarked(bundle: ModelBundle, request: GenerationRequest, listener: PipelineListener): Promise<GenerationResult> {
  const metadata = await metadataFor(bundle, request);
  if (request.outpaint) return outpaint(bundle, request, listener, metadata);
  if (request.sdUpscale) {
    const done = await sdUpscale(bundle, request, listener);
    return { images: [{ image: done.image, seed: request.seed, metadata: metadata({ seed: request.seed, batchPos: 0 }) }], latents: new Float32Array(0), timings: done.timings };
  }
  const planned: PlannedPass = request.init && request.mask ? await inpaintPass(request, request.init, request.mask) : { pass: withoutTasks(request) };
  const result = request.hires ? await hiresFixed(bundle, planned.pass, request.hires, listener) : await denoisePass(bundle, planned.pass, listener);
  const images = result.images.map(({ image, seed }, batchPos): GeneratedImage => {
    // A1111 records the size it painted (the crop's, for "Only masked").
    return { image: planned.finish ? planned.finish(image) : image, seed, metadata: metadata({ seed, batchPos }) };
  });
  return { images, latents: result.latents, timings: result.timings };
}

/** txt2img with a hires fix: the first pass to latents, the second pass (tasks/hires.ts) from them at the larger size. */
async function hiresFixed(bundle: ModelBundle, pass: PassRequest, hires: HiresFix, listener: PipelineListener): Promise<PassResult> {
  listener({ kind: 'pass', image: 1, images: 1, pass: 1, passes: 2 });
  const first = await denoisePass(bundle, { ...pass, latentsOnly: true }, listener);
  listener({ kind: 'pass', image: 1, images: 1, pass: 2, passes: 2 });
  const second = await denoisePass(bundle, await hiresPass(bundle, pass, hires, first.latents), listener);
  const timings = { ...second.timings };
  for (const k of ['textEncoder', 'denoise', 'vaeDecode', 'total'] as const) timings[k] += first.timings[k];
  return { ...second, timings };
}

/** Every finished image through the checker (after paste-back and the last outpaint pass, before the watermark); flagged ones replaced. */
async function safetyChecked(checker: SafetyChecker, result: GenerationResult, action: SafetyAction): Promise<GenerationResult> {
  const images: GeneratedImage[] = [];
  for (const img of result.images) {
    const nsfw = await checker.flags(img.image);
    images.push({ ...img, image: nsfw ? await censor(img.image, action) : img.image, metadata: { ...img.metadata, safetyCheck: { nsfw, action } } });
  }
  return { ...result, images };
}

/** Each image of the batch grows alone through its passes, each pass starting from the last one's picture. */
async function outpaint(
  bundle: ModelBundle,
  request: GenerationRequest,
  listener: PipelineListener,
  metadata: Awaited<ReturnType<typeof metadataFor>>,
): Promise<GenerationResult> {
  const native = bundle.files.sampleSize * bundle.files.vaeScaleFactor;
  const images: GeneratedImage[] = [];
  const latents: Float32Array[] = [];
  const timings = { textEncoder: 0, denoise: 0, vaeDecode: 0, total: 0 };
  for (let i = 0; i < request.batchSize; i++) {
    const one = nthImage(request, i);
    const plan = outpaintPlan(one, request.outpaint!, native);
    let picture = request.init!.image;
    let last: PassResult | undefined;
    for (let p = 0; p < plan.passes; p++) {
      listener({ kind: 'pass', image: i + 1, images: request.batchSize, pass: p + 1, passes: plan.passes });
      last = await denoisePass(bundle, await plan.pass(p, picture), listener);
      picture = last.images[0]!.image;
      for (const k of ['textEncoder', 'denoise', 'vaeDecode', 'total'] as const) timings[k] += last.timings[k];
    }
    latents.push(last!.latents);
    images.push({ image: picture, seed: one.seed, metadata: metadata({ seed: one.seed, batchPos: i }) });
  }
  const all = new Float32Array(latents.reduce((n, l) => n + l.length, 0));
  latents.reduce((at, l) => (all.set(l, at), at + l.length), 0);
  return { images, latents: all, timings };
}

/**
 * The UNet's input channels say what it can paint: the latents alone, plus a depth channel (depth
 * models) or plus a mask and a masked picture (inpainting models). A request it cannot take is
 * refused here, not by ONNX Runtime's shape error in the first step.
 */
function checkUnetFits(bundle: ModelBundle, request: GenerationRequest): void {
  const channels = bundle.unet.inChannels;
  const latent = bundle.files.latentChannels;
  if (channels === undefined || channels === latent || channels === latent + 1) return;
  if (channels === latent + 5) {
    if (request.mask || request.outpaint) return;
    throw new UsageError(`this model's UNet is an inpainting UNet (${channels} input channels): it paints with diffuse inpaint or outpaint, not ${request.init ? 'img2img' : 'txt2img'}; pass --model an ordinary model`);
  }
  throw new ModelLoadError(`unet/model.onnx takes ${channels} input channels; a Stable Diffusion UNet takes ${latent} (plain), ${latent + 1} (depth) or ${latent + 5} (inpainting)`);
}
