import { UsageError } from '../errors.js';
import { PROCESSOR_RES_MAX, PROCESSOR_RES_MIN } from '../image/preprocess/processor-resolution.js';
import type { ResizeMode } from '../image/resize-modes.js';
import type { DetectorKind } from '../graphs/detector-convert.js';

/** The files of yzd-v/DWPose that --control type=dwpose runs, as the Hub and sd-webui-controlnet name them. */
export const DWPOSE_FILES = { detector: 'yolox_l.onnx', pose: 'dw-ll_ucoco_384.onnx' } as const;

/**
 * The preprocessors --control runs on its picture (src/image/preprocess; depth: the DPT estimator of
 * the ControlNet's or the model's folder; softedge, softedge-pidinet, scribble-hed, scribble-pidinet, lineart, openpose, mlsd: the
 * network of detector=; dwpose: the two networks of the detector= folder): none passes it as it is.
 */
export const CONTROL_TYPES = ['canny', 'threshold', 'scribble-xdog', 'lineart-standard', 'invert', 'depth', 'softedge', 'softedge-safe', 'softedge-pidinet', 'softedge-pidisafe', 'scribble-hed', 'scribble-pidinet', 'lineart', 'lineart-coarse', 'lineart-anime', 'openpose', 'openpose-hand', 'openpose-face', 'openpose-faceonly', 'openpose-full', 'mlsd', 'dwpose', 'none'] as const;
export type ControlType = (typeof CONTROL_TYPES)[number];

/** sd-webui-controlnet's name of each preprocessor, its infotext's "Module" (depth: diffuse's runs DPT, SD2-depth's estimator). */
export const CONTROL_MODULES: Readonly<Record<ControlType, string>> = {
  canny: 'canny',
  threshold: 'threshold',
  'scribble-xdog': 'scribble_xdog',
  'lineart-standard': 'lineart_standard',
  invert: 'invert',
  depth: 'depth',
  softedge: 'softedge_hed',
  'softedge-safe': 'softedge_hedsafe',
  'softedge-pidinet': 'softedge_pidinet',
  'softedge-pidisafe': 'softedge_pidisafe',
  'scribble-hed': 'scribble_hed',
  'scribble-pidinet': 'scribble_pidinet',
  lineart: 'lineart_realistic',
  'lineart-coarse': 'lineart_coarse',
  'lineart-anime': 'lineart_anime',
  openpose: 'openpose',
  'openpose-hand': 'openpose_hand',
  'openpose-face': 'openpose_face',
  'openpose-faceonly': 'openpose_faceonly',
  'openpose-full': 'openpose_full',
  mlsd: 'mlsd',
  dwpose: 'dw_openpose_full',
  none: 'none',
};

/** The type that records `module`, or undefined for a module diffuse does not run. */
export function controlTypeOf(module: string): ControlType | undefined {
  return CONTROL_TYPES.find((t) => CONTROL_MODULES[t] === module);
}

/**
 * A network a preprocessor runs: lllyasviel/Annotators' file, its kind (src/graphs/detector-convert.ts), the registry
 * id pulled when its field is left out. dwpose runs two ONNX networks as yzd-v/DWPose publishes them (no conversion):
 * detector= names the folder holding both.
 */
export interface DetectorNetwork {
  file: string;
  kind: DetectorKind | 'dwpose';
  id: string;
}

const OPENPOSE_BODY: DetectorNetwork = { file: 'body_pose_model.pth', kind: 'openpose', id: 'annotators-openpose' };

/** The types that run a network from a weight file (detector=), and that network. */
export const DETECTORS: Readonly<Partial<Record<ControlType, DetectorNetwork>>> = {
  softedge: { file: 'ControlNetHED.pth', kind: 'hed', id: 'annotators-hed' },
  'softedge-safe': { file: 'ControlNetHED.pth', kind: 'hed', id: 'annotators-hed' },
  'softedge-pidinet': { file: 'table5_pidinet.pth', kind: 'pidinet', id: 'annotators-pidinet' },
  'softedge-pidisafe': { file: 'table5_pidinet.pth', kind: 'pidinet', id: 'annotators-pidinet' },
  'scribble-hed': { file: 'ControlNetHED.pth', kind: 'hed', id: 'annotators-hed' },
  'scribble-pidinet': { file: 'table5_pidinet.pth', kind: 'pidinet', id: 'annotators-pidinet' },
  lineart: { file: 'sk_model.pth', kind: 'lineart', id: 'annotators-lineart' },
  'lineart-coarse': { file: 'sk_model2.pth', kind: 'lineart', id: 'annotators-lineart-coarse' },
  'lineart-anime': { file: 'netG.pth', kind: 'lineart-anime', id: 'annotators-lineart-anime' },
  openpose: OPENPOSE_BODY,
  'openpose-hand': OPENPOSE_BODY,
  'openpose-face': OPENPOSE_BODY,
  'openpose-faceonly': OPENPOSE_BODY,
  'openpose-full': OPENPOSE_BODY,
  mlsd: { file: 'mlsd_large_512_fp32.pth', kind: 'mlsd', id: 'annotators-mlsd' },
  dwpose: { file: `DIR (holding ${DWPOSE_FILES.detector} and ${DWPOSE_FILES.pose})`, kind: 'dwpose', id: 'annotators-dwpose' },
};
const DETECTOR_TYPES = Object.keys(DETECTORS) as ControlType[];

/**
 * OpenPose's hand and face networks, given by their own fields (hand-detector=, face-detector=: a weight file or a
 * registry id; left out, the id is pulled), beside the body's detector= whose people they look at.
 */
export const POSE_NETWORKS = {
  hand: { field: 'hand-detector', file: 'hand_pose_model.pth', kind: 'openpose-hand', id: 'annotators-openpose-hand' },
  face: { field: 'face-detector', file: 'facenet.pth', kind: 'openpose-face', id: 'annotators-openpose-face' },
} as const satisfies Record<string, DetectorNetwork & { field: string }>;
export type PoseNetworkName = keyof typeof POSE_NETWORKS;

/** What each OpenPose type draws (sd-webui-controlnet's openpose_hand, _face, _faceonly, _full) and so which networks it runs. */
export const POSE_PARTS: Readonly<Partial<Record<ControlType, { body: boolean; hands: boolean; face: boolean }>>> = {
  openpose: { body: true, hands: false, face: false },
  'openpose-hand': { body: true, hands: true, face: false },
  'openpose-face': { body: true, hands: false, face: true },
  'openpose-faceonly': { body: false, hands: false, face: true },
  'openpose-full': { body: true, hands: true, face: true },
};

/** The hand and face networks `type` runs besides the body's. */
export function poseNetworksOf(type: ControlType): PoseNetworkName[] {
  const parts = POSE_PARTS[type];
  return parts ? (['hand', 'face'] as const).filter((n) => (n === 'hand' ? parts.hands : parts.face)) : [];
}

/**
 * The types whose sd-webui-controlnet preprocessor scales the picture to its Preprocessor Resolution first
 * (resize_image_with_pad): res= applies to them. Not invert (the extension inverts the picture as it is), none, nor
 * depth (diffuse's runs SD2-depth's DPT with its own feature extractor, not the extension's midas at res).
 */
export const RES_TYPES: readonly ControlType[] = ['canny', 'threshold', 'scribble-xdog', 'lineart-standard', 'softedge', 'softedge-safe', 'softedge-pidinet', 'softedge-pidisafe', 'scribble-hed', 'scribble-pidinet', 'lineart', 'lineart-coarse', 'openpose', 'openpose-hand', 'openpose-face', 'openpose-faceonly', 'openpose-full', 'mlsd', 'dwpose'];

/** One --control value, as typed: what to make the control picture from, and the unit's settings. */
export interface ControlSpec {
  type: ControlType;
  image: string;
  model: string;
  weight: number;
  start: number;
  end: number;
  guess: boolean;
  resize: ResizeMode;
  /** HED's, PiDiNet's, lineart's or OpenPose's network (DETECTORS): a weight file's path or a registry id; undefined: the type's default id. */
  detector?: string;
  /** OpenPose's hand and face networks (POSE_NETWORKS), as detector=. */
  'hand-detector'?: string;
  'face-detector'?: string;
  /** canny's low and high thresholds (sd-webui-controlnet's 100, 200); threshold's level (127), scribble-xdog's (32). */
  low: number;
  high: number;
  level: number;
  /** mlsd's "MLSD Value Threshold" (thr_v, 0.1) and "MLSD Distance Threshold" (thr_d, 0.1), the extension's slider ranges. */
  value: number;
  distance: number;
  /**
   * Preprocessor Resolution (64…2048, RES_TYPES only); 'pixel-perfect': the extension's "Pixel Perfect", computed from
   * the picture, the painted size and the resize mode (pixelPerfectResolution); undefined: the picture as it is.
   */
  res?: number | typeof PIXEL_PERFECT;
}

/** res='s value that ticks the extension's "Pixel Perfect". */
export const PIXEL_PERFECT = 'pixel-perfect';

const RESIZE_MODES = ['just-resize', 'crop-and-resize', 'resize-and-fill'] as const;
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;
const FIELDS = ['type', 'image', 'model', 'weight', 'start', 'end', 'guess', 'resize', 'low', 'high', 'level', 'value', 'distance', 'res', 'detector', 'hand-detector', 'face-detector'] as const;
const FORM = 'type=canny,image=ref.png,model=DIR|FILE[,weight=1,start=0,end=1,guess,resize=just-resize,low=100,high=200,value=0.1,distance=0.1,res=512|pixel-perfect,detector=FILE|ID,hand-detector=FILE|ID,face-detector=FILE|ID]';

/** Every --control given (the flag repeats: multi-ControlNet), each read as `key=value,…`. */
export function parseControlSpecs(raw: unknown, label: string): ControlSpec[] {
  const values = Array.isArray(raw) ? raw : [raw];
  return values.map((value, i) => parseOne(value, values.length > 1 ? `${label} #${i + 1}` : label));
}

/** A field given to a type that has no use for it: the user meant another type, or the field is left over. */
function notTaken(label: string, key: string, what: string, takers: readonly ControlType[], type: ControlType): UsageError {
  return new UsageError(`${label}: ${key}= is ${what} of type=${takers.join('/')}; type=${type} takes none: drop ${key}= or change type=`);
}

function parseOne(raw: unknown, label: string): ControlSpec {
  if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`${label} takes ${FORM} (got ${JSON.stringify(raw)})`);
  const fields = new Map<string, string>();
  for (const part of raw.split(',')) {
    const at = part.indexOf('=');
    const key = (at < 0 ? part : part.slice(0, at)).trim();
    const value = at < 0 ? undefined : part.slice(at + 1).trim();
    if (!(FIELDS as readonly string[]).includes(key)) throw new UsageError(`${label}: unknown field '${key}' (fields: ${FIELDS.join(', ')}); write ${FORM}`);
    if (fields.has(key)) throw new UsageError(`${label}: ${key} is given twice`);
    if (key === 'guess') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`${label}: guess takes no value, or true/false (got '${value}')`);
      fields.set(key, value ?? 'true');
    } else {
      if (!value) throw new UsageError(`${label}: ${key} needs a value (${key}=…)`);
      fields.set(key, value);
    }
  }
  const type = fields.get('type') ?? 'none';
  if (!(CONTROL_TYPES as readonly string[]).includes(type)) throw new UsageError(`${label}: type must be one of ${CONTROL_TYPES.join(', ')} (got '${type}')`);
  const resize = fields.get('resize') ?? 'just-resize';
  if (!(RESIZE_MODES as readonly string[]).includes(resize)) throw new UsageError(`${label}: resize must be one of ${RESIZE_MODES.join(', ')} (got '${resize}')`);
  const required = (key: 'image' | 'model') => {
    const v = fields.get(key);
    if (v === undefined) throw new UsageError(`${label}: missing ${key}=… (${key === 'image' ? 'the picture to follow' : 'the ControlNet folder or file'}); write ${FORM}`);
    return v;
  };
  const number = (key: string, fallback: number, min: number, max: number): number => {
    const text = fields.get(key);
    if (text === undefined) return fallback;
    const n = NUMBER.test(text) ? Number(text) : Number.NaN;
    if (!(n >= min && n <= max)) throw new UsageError(`${label}: ${key} must be a number from ${min} to ${max} (got '${text}')`);
    return n;
  };
  const spec: ControlSpec = {
    type: type as ControlType,
    image: required('image'),
    model: required('model'),
    weight: number('weight', 1, 0, 2),
    start: number('start', 0, 0, 1),
    end: number('end', 1, 0, 1),
    guess: fields.get('guess') === 'true',
    resize: resize as ResizeMode,
    low: number('low', 100, 0, 255),
    high: number('high', 200, 0, 255),
    level: number('level', type === 'scribble-xdog' ? 32 : 127, 0, 255),
    value: number('value', 0.1, 0.01, 2),
    distance: number('distance', 0.1, 0.01, 20),
  };
  for (const key of ['value', 'distance'] as const) {
    if (fields.has(key) && spec.type !== 'mlsd') throw notTaken(label, key, 'a threshold', ['mlsd'], spec.type);
  }
  const res = fields.get('res');
  if (res !== undefined) {
    if (!RES_TYPES.includes(spec.type)) throw notTaken(label, 'res', 'the Preprocessor Resolution', RES_TYPES, spec.type);
    if (res !== PIXEL_PERFECT && (!/^\d+$/.test(res) || Number(res) < PROCESSOR_RES_MIN || Number(res) > PROCESSOR_RES_MAX)) {
      throw new UsageError(`${label}: res must be a whole number from ${PROCESSOR_RES_MIN} to ${PROCESSOR_RES_MAX}, or ${PIXEL_PERFECT} (got '${res}')`);
    }
    spec.res = res === PIXEL_PERFECT ? PIXEL_PERFECT : Number(res);
  }
  const detector = fields.get('detector');
  if (detector !== undefined) {
    if (!DETECTOR_TYPES.includes(spec.type)) throw notTaken(label, 'detector', 'the network', DETECTOR_TYPES, spec.type);
    spec.detector = detector;
  }
  for (const [name, network] of Object.entries(POSE_NETWORKS) as Array<[PoseNetworkName, (typeof POSE_NETWORKS)[PoseNetworkName]]>) {
    const given = fields.get(network.field);
    if (given === undefined) continue;
    const takers = CONTROL_TYPES.filter((t) => poseNetworksOf(t).includes(name));
    if (!takers.includes(spec.type)) throw notTaken(label, network.field, `the ${name} network`, takers, spec.type);
    spec[network.field] = given;
  }
  if (spec.start >= spec.end) throw new UsageError(`${label}: start ${spec.start} must be below end ${spec.end}`);
  return spec;
}
