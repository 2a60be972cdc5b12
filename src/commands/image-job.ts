import { UsageError } from '../errors.js';
import { loadImage } from '../image/load-image.js';
import { blurMask, invertMask, luminance } from '../image/mask.js';
import { extendCanvas, extensionPasses, outpaintMask, type Extension, type OutpaintFill } from '../image/outpaint-canvas.js';
import type { Raster } from '../image/raster.js';
import { fitToSize, type ResizeMode } from '../image/resize-modes.js';
import { crop, cropPlane, matchAspect, maskBox, pasteBack } from '../image/composite.js';
import { fillMasked } from '../image/mask-fill.js';
import type { GenerationRequest, StrengthMode } from '../pipeline/types.js';
import { sha256File } from '../pipeline/model-hash.js';
import { hasDepthEstimator } from '../pipeline/model-files.js';
import { parseInteger, parseNumber } from '../settings/options.js';

/** What img2img, inpaint and outpaint add to a request, per pass (outpaint may need several). */
export interface ImageJob {
  width: number;
  height: number;
  strength: number;
  passCount: number;
  /** The request fields of pass p, given the previous pass's picture. */
  pass(p: number, previous: Raster | undefined, seed: number): Promise<Pick<GenerationRequest, 'init' | 'mask' | 'depth' | 'width' | 'height'>>;
  /** Extra infotext fields (A1111's names where it has them). */
  infotext: Record<string, string>;
  /** The pipeline estimates depth with the model's depth_estimator/ (depth2img without --depth-map). */
  depthEstimator?: boolean;
  /** Turns the pipeline's picture into the output (inpainting a crop: paste it back into the whole). */
  finish?(image: Raster): Raster;
}

export interface ImageFlags {
  initImage?: string;
  strength?: string;
  resizeMode?: string;
  vaeLatents?: string;
  width?: string;
  height?: string;
  mask?: string;
  maskFromAlpha?: boolean;
  maskBlur?: string;
  invertMask?: boolean;
  inpaintArea?: string;
  maskedPadding?: string;
  maskedContent?: string;
  extend?: string;
  fill?: string;
  overlap?: string;
  passSize?: string;
  depthMap?: string;
  strengthMode?: string;
}

const RESIZE_MODES: readonly ResizeMode[] = ['just-resize', 'crop-and-resize', 'resize-and-fill'];

function choice<T extends string>(raw: string | undefined, options: readonly T[], flag: string, fallback: T): T {
  if (raw === undefined) return fallback;
  if (!options.includes(raw as T)) throw new UsageError(`${flag} must be one of ${options.join(', ')} (got '${raw}')`);
  return raw as T;
}

function multipleOf8(n: number, flag: string): number {
  if (n % 8 !== 0) throw new UsageError(`${flag} must be a multiple of 8 (got ${n})`);
  return n;
}

async function readInput(path: string, flag: string, options: Parameters<typeof loadImage>[1] = {}): Promise<{ rgb: Raster; alpha: Raster | null }> {
  try {
    return await loadImage(path, options);
  } catch (err) {
    const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    const why = code === 'ENOENT' ? 'no such file' : 'not an image sharp can decode; pass a PNG, JPEG or WebP file';
    throw new UsageError(`${flag}: cannot read ${path}: ${why}`, { cause: err });
  }
}

/** The picture's size floored to multiples of 8, unless --width/--height say otherwise. */
function outputSize(flags: ImageFlags, image: Raster): { width: number; height: number } {
  const width = flags.width ? multipleOf8(parseInteger(8, 8192)(flags.width, '--width'), '--width') : Math.floor(image.width / 8) * 8;
  const height = flags.height ? multipleOf8(parseInteger(8, 8192)(flags.height, '--height'), '--height') : Math.floor(image.height / 8) * 8;
  if (width < 8 || height < 8) throw new UsageError(`the init image is ${image.width}x${image.height}; it must be at least 8x8`);
  return { width, height };
}

function strengthOf(flags: ImageFlags, fallback: number): number {
  return flags.strength === undefined ? fallback : parseNumber(0, 1)(flags.strength, '--strength');
}

/** --strength-mode, and its infotext field when not diffusers'. */
function strengthModeOf(flags: ImageFlags): { strengthMode: StrengthMode; infotext: Record<string, string> } {
  const strengthMode = choice(flags.strengthMode, ['diffusers', 'a1111'] as const, '--strength-mode', 'diffusers');
  return { strengthMode, infotext: strengthMode === 'a1111' ? { 'Strength mode': 'a1111' } : {} };
}

function latentsMode(flags: ImageFlags): 'sample' | 'mean' {
  return choice(flags.vaeLatents, ['sample', 'mean'] as const, '--vae-latents', 'sample');
}

export async function img2imgJob(flags: ImageFlags, defaultStrength = 0.75): Promise<ImageJob> {
  if (!flags.initImage) throw new UsageError('missing --init-image <path>: the picture to start from');
  const probe = await readInput(flags.initImage, '--init-image');
  const { width, height } = outputSize(flags, probe.rgb);
  const resizeMode = choice(flags.resizeMode, RESIZE_MODES, '--resize-mode', 'just-resize');
  const image = (await readInput(flags.initImage, '--init-image', { width, height, resizeMode })).rgb;
  const strength = strengthOf(flags, defaultStrength);
  const latents = latentsMode(flags);
  const mode = strengthModeOf(flags);
  return {
    width,
    height,
    strength,
    passCount: 1,
    pass: async () => ({ init: { image, strength, latents, strengthMode: mode.strengthMode }, width, height }),
    infotext: { 'Init image hash': (await sha256File(flags.initImage)).slice(0, 10), 'Resize mode': resizeMode, ...mode.infotext },
  };
}

/**
 * img2img guided by depth for depth-conditioned models: --depth-map (any size; grey levels,
 * white = near), or the model's own depth_estimator/ reading the picture. diffusers' default
 * strength there is 0.8.
 */
export async function depth2imgJob(flags: ImageFlags, modelDir: string): Promise<ImageJob> {
  const base = await img2imgJob(flags, 0.8);
  if (!flags.depthMap) {
    if (!hasDepthEstimator(modelDir)) throw new UsageError('missing --depth-map <path> (a grey picture, white = near): this model has no depth_estimator/ to estimate one');
    return { ...base, depthEstimator: true, infotext: { ...base.infotext, 'Depth map': 'estimated' } };
  }
  const grey = (await readInput(flags.depthMap, '--depth-map')).rgb;
  const depth = { values: luminance(grey), width: grey.width, height: grey.height };
  return {
    ...base,
    pass: async (p, previous, seed) => ({ ...(await base.pass(p, previous, seed)), depth }),
    infotext: { ...base.infotext, 'Depth map hash': (await sha256File(flags.depthMap)).slice(0, 10) },
  };
}

export async function inpaintJob(flags: ImageFlags, nativeSize: number): Promise<ImageJob> {
  const area = choice(flags.inpaintArea, ['whole', 'masked'] as const, '--inpaint-area', 'whole');
  const content = choice(flags.maskedContent, ['original', 'fill', 'latent-noise', 'latent-nothing'] as const, '--masked-content', 'original');
  // With --inpaint-area masked, --width/--height size the crop that is painted, not the picture.
  const base = await img2imgJob(area === 'masked' ? { ...flags, width: undefined, height: undefined } : flags);
  const { width, height } = base;
  const resizeMode = choice(flags.resizeMode, RESIZE_MODES, '--resize-mode', 'just-resize');
  const mask = await readMask(flags, width, height, resizeMode);
  const blur = flags.maskBlur === undefined ? 4 : parseInteger(0, 64)(flags.maskBlur, '--mask-blur');
  const blurred = await blurMask(mask, width, height, blur);
  const first = await base.pass(0, undefined, 0);
  const whole = first.init!;
  const image = content === 'fill' ? fillMasked(whole.image, mask) : whole.image;
  const init = { ...whole, image, ...(content === 'latent-noise' || content === 'latent-nothing' ? { maskedContent: content } : {}) };
  const infotext = {
    ...base.infotext,
    ...(flags.mask ? { 'Mask hash': (await sha256File(flags.mask)).slice(0, 10) } : { 'Mask source': 'alpha' }),
    'Mask blur': String(blur),
    ...(flags.invertMask ? { 'Mask mode': 'Inpaint not masked' } : {}),
    'Masked content': content,
    'Inpaint area': area === 'masked' ? 'Only masked' : 'Whole picture',
  };
  if (area === 'whole') {
    return { ...base, pass: async () => ({ init, width, height, mask: { values: blurred, overlay: blurred } }), infotext };
  }
  const padding = flags.maskedPadding === undefined ? 32 : parseInteger(0, 1024)(flags.maskedPadding, '--masked-padding');
  const pw = flags.width ? multipleOf8(parseInteger(8, 8192)(flags.width, '--width'), '--width') : nativeSize;
  const ph = flags.height ? multipleOf8(parseInteger(8, 8192)(flags.height, '--height'), '--height') : nativeSize;
  const box = matchAspect(maskBox(blurred, width, height, padding)!, pw / ph, width, height);
  const cropImage = fitToSize(crop(init.image, box), pw, ph, 'just-resize');
  const cropMask = resizePlane(cropPlane(blurred, width, box), box.x1 - box.x0, box.y1 - box.y0, pw, ph);
  return {
    ...base,
    width: pw,
    height: ph,
    pass: async () => ({ init: { ...init, image: cropImage }, width: pw, height: ph, mask: { values: cropMask } }),
    finish: (painted) => pasteBack(whole.image, painted, box, blurred),
    infotext: { ...infotext, 'Masked area padding': String(padding) },
  };
}

/** The repaint mask at the picture's size: a file (white repaints), or the init image's transparency. */
async function readMask(flags: ImageFlags, width: number, height: number, resizeMode: ResizeMode): Promise<Float32Array> {
  let mask: Float32Array;
  if (flags.maskFromAlpha) {
    const alpha = (await readInput(flags.initImage!, '--init-image', { width, height, resizeMode })).alpha;
    if (!alpha) throw new UsageError('--mask-from-alpha: the init image has no alpha channel; pass --mask <path>');
    // Transparent pixels are the ones to paint.
    mask = invertMask(luminance(alpha));
  } else {
    if (!flags.mask) throw new UsageError('missing --mask <path> (white repaints, black keeps), or --mask-from-alpha');
    const probe = await readInput(flags.mask, '--mask');
    const init = await readInput(flags.initImage!, '--init-image');
    const aspect = (r: Raster) => r.width / r.height;
    if (Math.abs(aspect(probe.rgb) - aspect(init.rgb)) > 0.01) {
      throw new UsageError(`--mask is ${probe.rgb.width}x${probe.rgb.height} but the init image is ${init.rgb.width}x${init.rgb.height}: their aspect ratios differ`);
    }
    if (probe.rgb.width !== width || probe.rgb.height !== height) {
      process.stderr.write(`note: the mask is ${probe.rgb.width}x${probe.rgb.height}; resized to ${width}x${height}\n`);
    }
    mask = luminance((await readInput(flags.mask, '--mask', { width, height, resizeMode })).rgb);
  }
  if (flags.invertMask) mask = invertMask(mask);
  if (!mask.some((v) => v >= 0.5)) {
    throw new UsageError('the mask has no white (repaint) area: nothing to do (white repaints, black keeps; --invert-mask flips it)');
  }
  return mask;
}

/** A [0, 1] plane resized like a picture (through an 8-bit raster, as PIL resizes an L-mode mask). */
function resizePlane(plane: Float32Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array {
  const raster: Raster = { width, height, channels: 1, data: Uint8Array.from(plane, (v) => Math.round(v * 255)) };
  return Float32Array.from(fitToSize(raster, outWidth, outHeight, 'just-resize').data, (v) => v / 255);
}

/** "128" (every side) or "left=128,right=0,top=64,bottom=256". */
export function parseExtension(raw: string | undefined): Extension {
  if (!raw) throw new UsageError('missing --extend: e.g. --extend 128, or --extend left=128,right=128,top=0,bottom=256');
  const check = (v: string, side: string) => multipleOf8(parseInteger(0, 4096)(v, `--extend ${side}`), `--extend ${side}`);
  if (/^\d+$/.test(raw.trim())) {
    const v = check(raw.trim(), 'size');
    return { left: v, right: v, top: v, bottom: v };
  }
  const ext: Extension = { left: 0, right: 0, top: 0, bottom: 0 };
  for (const part of raw.split(',')) {
    const [side, value] = part.split('=').map((s) => s.trim());
    if (!side || value === undefined || !(side in ext)) {
      throw new UsageError(`--extend: cannot read '${part}'; write left=N,right=N,top=N,bottom=N (multiples of 8)`);
    }
    ext[side as keyof Extension] = check(value, side);
  }
  if (ext.left + ext.right + ext.top + ext.bottom === 0) throw new UsageError('--extend: every side is 0, nothing to do');
  return ext;
}

export async function outpaintJob(flags: ImageFlags, nativeSize: number): Promise<ImageJob> {
  if (!flags.initImage) throw new UsageError('missing --init-image <path>: the picture to extend');
  const ext = parseExtension(flags.extend);
  const source = (await readInput(flags.initImage, '--init-image')).rgb;
  const { width: w0, height: h0 } = outputSize({}, source);
  const start = w0 === source.width && h0 === source.height ? source : (await readInput(flags.initImage, '--init-image', { width: w0, height: h0 })).rgb;
  const fill = choice(flags.fill, ['stretch', 'blur', 'noise'] as const, '--fill', 'stretch') as OutpaintFill;
  const overlap = flags.overlap === undefined ? 16 : multipleOf8(parseInteger(0, 256)(flags.overlap, '--overlap'), '--overlap');
  const blur = flags.maskBlur === undefined ? 8 : parseInteger(0, 64)(flags.maskBlur, '--mask-blur');
  const passSize = flags.passSize === undefined ? Math.max(8, Math.floor(nativeSize / 2 / 8) * 8) : multipleOf8(parseInteger(8, 4096)(flags.passSize, '--pass-size'), '--pass-size');
  const strength = strengthOf(flags, 1);
  const latents = latentsMode(flags);
  const mode = strengthModeOf(flags);
  const passes = extensionPasses(ext, passSize);
  return {
    width: w0 + ext.left + ext.right,
    height: h0 + ext.top + ext.bottom,
    strength,
    passCount: passes.length,
    pass: async (p, previous, seed) => {
      const step = passes[p]!;
      const canvas = await extendCanvas(previous ?? start, step, fill, seed);
      const hard = outpaintMask(canvas.width, canvas.height, step, overlap);
      const soft = await blurMask(hard, canvas.width, canvas.height, blur);
      // Past twice the overlap the old picture stays exactly as it was.
      const guard = outpaintMask(canvas.width, canvas.height, step, 2 * overlap);
      const overlay = soft.map((v, i) => (guard[i] === 0 ? 0 : v));
      return { init: { image: canvas, strength, latents, strengthMode: mode.strengthMode }, mask: { values: hard, overlay }, width: canvas.width, height: canvas.height };
    },
    infotext: {
      'Init image hash': (await sha256File(flags.initImage)).slice(0, 10),
      Outpaint: `left=${ext.left},right=${ext.right},top=${ext.top},bottom=${ext.bottom}`,
      'Outpaint fill': fill,
      Overlap: String(overlap),
      'Mask blur': String(blur),
      ...mode.infotext,
    },
  };
}
