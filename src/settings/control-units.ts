import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { controlNetFiles, ensureConvertedControlNet } from '../graphs/controlnet-convert.js';
import { CheckpointError } from '../graphs/errors.js';
import { ensureConvertedDetector } from '../graphs/detector-convert.js';
import { openInputFile } from '../input-file.js';
import { cacheRoot, convertedFolder } from '../models/index.js';
import { readImageFile } from '../image/load-image.js';
import type { SessionSettings } from '../onnx/session.js';
import { depthControlPicture, depthEstimatorFolder } from '../pipeline/depth-control.js';
import { checkDetectorPictureSize, dwposeControlPicture, hedControlPicture, lineartAnimeControlPicture, lineartControlPicture, mlsdControlPicture, openposeControlPicture, pidinetControlPicture } from '../pipeline/detector-control.js';
import { cannyControlMap } from '../image/preprocess/canny.js';
import { invert } from '../image/preprocess/invert.js';
import { atProcessorResolution, PROCESSOR_RES_DEFAULT, pixelPerfectResolution, processorResolutionSize } from '../image/preprocess/processor-resolution.js';
import { lineartStandard } from '../image/preprocess/lineart-standard.js';
import { scribbleXdog } from '../image/preprocess/scribble.js';
import { scribbleFromEdges } from '../image/preprocess/scribble-edges.js';
import { threshold } from '../image/preprocess/threshold.js';
import type { Raster } from '../image/raster.js';
import { hasControlNetGraph } from '../pipeline/controlnet.js';
import type { ControlUnit } from '../pipeline/types.js';
import { CONTROL_MODULES, DETECTORS, DWPOSE_FILES, PIXEL_PERFECT, POSE_NETWORKS, POSE_PARTS, poseNetworksOf, type ControlSpec, type DetectorNetwork } from './control-spec.js';

/**
 * --control values turned into the request's units, before the model loads: each ControlNet
 * folder checked (or its weights converted: the unit then names the converted folder), each picture read once and run through its preprocessor (on the picture as it
 * is, or scaled to res= as sd-webui-controlnet's Preprocessor Resolution; the pipeline then fits the result to the painted size).
 */
export async function readControlUnits(
  specs: readonly ControlSpec[],
  modelDir: string,
  session: SessionSettings,
  painted: { width: number; height: number },
  region?: (picture: Raster, mode: ControlSpec['resize']) => Raster,
): Promise<ControlUnit[]> {
  return Promise.all(
    specs.map(async (spec, i): Promise<ControlUnit> => {
      const label = `--control${specs.length > 1 ? ` #${i + 1}` : ''}`;
      const model = await controlNetFolder(spec.model, label);
      const file = (await readImageFile(spec.image, `${label} image`)).rgb;
      // An "only masked" inpaint: the picture is cut to the painted region before its preprocessor, as the extension does.
      const read = region ? region(file, spec.resize) : file;
      const res = spec.res === PIXEL_PERFECT ? pixelPerfectResolution(read, painted, spec.resize) : spec.res;
      // Only Pixel Perfect can go this low (a picture far narrower than the painted size, fitted in): nothing left to scale to.
      const scaled = res === undefined ? undefined : processorResolutionSize(read.width, read.height, res);
      if (scaled && (scaled.width < 1 || scaled.height < 1)) {
        throw new UsageError(`${label}: res=${spec.res} gives ${res} for the ${read.width}x${read.height} picture painted at ${painted.width}x${painted.height}: nothing is left of a side; crop the picture or give res=`);
      }
      if (DETECTORS[spec.type]) checkDetectorPictureSize(read, `${label} image`, spec.type, res);
      const picture = res === undefined ? read : atProcessorResolution(read, res);
      return {
        model,
        image: await controlPicture(spec, picture, {
          depth: () => depthControlPicture(depthFolder(spec, modelDir, label), picture, session),
          softedge: async (safe) => hedControlPicture(await detectorGraph(spec, label), picture, safe, session),
          pidinet: async (safe) => pidinetControlPicture(await detectorGraph(spec, label), picture, safe, session),
          lineart: async () => lineartControlPicture(await detectorGraph(spec, label), picture, session),
          lineartAnime: async () => lineartAnimeControlPicture(await detectorGraph(spec, label), picture, session),
          openpose: async () => openposeControlPicture(await detectorGraph(spec, label), picture, session, POSE_PARTS[spec.type]!, await poseGraphs(spec, label)),
          mlsd: async () => mlsdControlPicture(await detectorGraph(spec, label), picture, { value: spec.value, distance: spec.distance }, session),
          dwpose: async () => dwposeControlPicture(dwposeModels(spec, label), picture, session),
        }),
        weight: spec.weight,
        start: spec.start,
        end: spec.end,
        guess: spec.guess,
        resizeMode: spec.resize,
        ...(region ? { inRegion: true } : {}),
        preprocessor: preprocessorRecord(spec),
      };
    }),
  );
}

/**
 * model=…: a ControlNet folder in the ONNX layout as it is; ControlNet weights (lllyasviel's and
 * A1111's .pth/.safetensors files, a diffusers ControlNet folder) converted once into the cache.
 */
async function controlNetFolder(model: string, label: string): Promise<string> {
  const path = resolve(model);
  if (!existsSync(path)) throw new UsageError(`${label}: model ${model}: no such file or folder; pass a ControlNet file (.pth, .safetensors) or folder`);
  if (statSync(path).isDirectory()) {
    if (hasControlNetGraph(path)) return model;
    try {
      controlNetFiles(path);
    } catch (err) {
      if (!(err instanceof CheckpointError)) throw err;
      throw new UsageError(`${label}: model ${model}: no controlnet/model.onnx or model.onnx there, nor ControlNet weights (diffusion_pytorch_model.safetensors and config.json); pass a ControlNet folder or file`, { cause: err });
    }
  } else {
    // A FIFO or a device would be hashed forever: only regular files go on.
    openInputFile(path, { label: `${label} model`, maxBytes: Number.MAX_SAFE_INTEGER }).close();
  }
  return ensureConvertedControlNet(path, convertedFolder(cacheRoot()));
}

/** type=depth: the ControlNet's folder (or its parent, for DIR/controlnet) or the model's, whichever has a DPT estimator. */
function depthFolder(spec: ControlSpec, modelDir: string, label: string): string {
  const found = depthEstimatorFolder([spec.model, dirname(resolve(spec.model)), modelDir]);
  if (found) return found;
  throw new UsageError(`${label}: type=depth needs a DPT depth estimator (depth_estimator/ and feature_extractor/, as stabilityai/stable-diffusion-2-depth ships) in the ControlNet's folder or the model's; none is there — pass a depth map with type=none`);
}

/**
 * detector=: the network's weight file (a regular file; registry ids are pulled before, by the command), its graph
 * built once into the cache (the picture's size was checked when it was read).
 */
async function detectorGraph(spec: ControlSpec, label: string): Promise<string> {
  return networkGraph(spec.detector, DETECTORS[spec.type], 'detector', spec.type, label);
}

/** `field`=: one network's weight file (a regular file) built once into the cache. */
async function networkGraph(given: string | undefined, network: DetectorNetwork | undefined, field: string, type: string, label: string): Promise<string> {
  if (!network || network.kind === 'dwpose' || given === undefined) throw new UsageError(`${label}: type=${type} needs ${field}=${network?.file ?? 'FILE'}`);
  const path = resolve(given);
  const name = field.replace('-', ' ');
  if (!existsSync(path)) throw new UsageError(`${label}: ${name} ${given}: no such file; pass the network's weight file (lllyasviel/Annotators')`);
  if (statSync(path).isDirectory()) throw new UsageError(`${label}: ${name} ${given} is a folder; pass the network's weight file (lllyasviel/Annotators') itself`);
  openInputFile(path, { label: `${label} ${name}`, maxBytes: Number.MAX_SAFE_INTEGER }).close();
  return ensureConvertedDetector(network.kind, path, convertedFolder(cacheRoot()));
}

/** The OpenPose type's hand and face networks (hand-detector=, face-detector=), built as detector='s. */
async function poseGraphs(spec: ControlSpec, label: string): Promise<{ hand?: string; face?: string }> {
  const graphs: { hand?: string; face?: string } = {};
  for (const name of poseNetworksOf(spec.type)) {
    const network = POSE_NETWORKS[name];
    graphs[name] = await networkGraph(spec[network.field], network, network.field, spec.type, label);
  }
  return graphs;
}

/** detector= for dwpose: a folder holding yzd-v/DWPose's two ONNX files (a pulled registry entry's, or the user's). */
function dwposeModels(spec: ControlSpec, label: string): { detector: string; pose: string } {
  const dir = spec.detector === undefined ? undefined : resolve(spec.detector);
  const form = `pass a folder holding ${DWPOSE_FILES.detector} and ${DWPOSE_FILES.pose} (yzd-v/DWPose's)`;
  if (!dir || !existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${label}: type=dwpose needs detector=DIR: ${spec.detector ?? 'none given'} is not a folder; ${form}`);
  const files = { detector: join(dir, DWPOSE_FILES.detector), pose: join(dir, DWPOSE_FILES.pose) };
  for (const path of Object.values(files)) {
    if (!existsSync(path)) throw new UsageError(`${label}: detector ${spec.detector} has no ${path.slice(dir.length + 1)}; ${form}`);
    // A FIFO or a device would block the session's read: only regular files go on.
    openInputFile(path, { label: `${label} detector`, maxBytes: Number.MAX_SAFE_INTEGER }).close();
  }
  return files;
}

/** The networks a preprocessor may run: each a model load, so only made when the unit's type asks. */
interface Networks {
  depth: () => Promise<Raster>;
  softedge: (safe: boolean) => Promise<Raster>;
  pidinet: (safe: boolean) => Promise<Raster>;
  lineart: () => Promise<Raster>;
  lineartAnime: () => Promise<Raster>;
  openpose: () => Promise<Raster>;
  mlsd: () => Promise<Raster>;
  dwpose: () => Promise<Raster>;
}

/** The picture through the unit's preprocessor. */
async function controlPicture(spec: ControlSpec, picture: Raster, networks: Networks): Promise<Raster> {
  switch (spec.type) {
    case 'depth':
      return networks.depth();
    case 'softedge':
    case 'softedge-safe':
      return networks.softedge(spec.type === 'softedge-safe');
    case 'softedge-pidinet':
    case 'softedge-pidisafe':
      return networks.pidinet(spec.type === 'softedge-pidisafe');
    case 'scribble-hed':
      return scribbleFromEdges(await networks.softedge(false));
    case 'scribble-pidinet':
      return scribbleFromEdges(await networks.pidinet(false));
    case 'lineart':
    case 'lineart-coarse':
      return networks.lineart();
    case 'lineart-anime':
      return networks.lineartAnime();
    case 'openpose':
    case 'openpose-hand':
    case 'openpose-face':
    case 'openpose-faceonly':
    case 'openpose-full':
      return networks.openpose();
    case 'mlsd':
      return networks.mlsd();
    case 'dwpose':
      return networks.dwpose();
    case 'canny':
      return cannyControlMap(picture, spec.low, spec.high);
    case 'threshold':
      return threshold(picture, spec.level);
    case 'scribble-xdog':
      return scribbleXdog(picture, spec.level);
    case 'lineart-standard':
      return lineartStandard(picture);
    case 'invert':
      return invert(picture);
    case 'none':
      return picture;
  }
}

/**
 * A1111's "Module" and its slider values: "Processor Res" when res= is given, "Threshold A/B" (canny's thresholds,
 * threshold's and scribble-xdog's level, mlsd's value and distance thresholds). With Pixel Perfect the extension writes the unit before computing the
 * resolution it uses, so "Processor Res" is the hidden slider's default, not that resolution.
 */
function preprocessorRecord(spec: ControlSpec): NonNullable<ControlUnit['preprocessor']> {
  const res = spec.res === PIXEL_PERFECT ? { processorRes: PROCESSOR_RES_DEFAULT, pixelPerfect: true } : spec.res !== undefined ? { processorRes: spec.res } : {};
  const record = { module: CONTROL_MODULES[spec.type], ...res };
  if (spec.type === 'canny') return { ...record, thresholdA: spec.low, thresholdB: spec.high };
  if (spec.type === 'threshold' || spec.type === 'scribble-xdog') return { ...record, thresholdA: spec.level };
  if (spec.type === 'mlsd') return { ...record, thresholdA: spec.value, thresholdB: spec.distance };
  return record;
}
