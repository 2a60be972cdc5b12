import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { ensureConvertedControlNet } from '../graphs/controlnet-convert.js';
import { findControlNet, findPreprocessor, loadRegistry, type Registry } from '../models/index.js';
import { readImageFile } from '../image/load-image.js';
import { checkDetectorPictureSize } from '../pipeline/detector-control.js';
import type { ModelFiles } from '../pipeline/model-files.js';
import { DETECTORS, PIXEL_PERFECT, POSE_NETWORKS, poseNetworksOf, type ControlSpec, type DetectorNetwork } from '../settings/control-spec.js';
import { convertedCache } from './convert.js';
import { convertProgress } from './convert-progress.js';
import { refuseOtherFamily } from './family-check.js';
import { readPulled, resolveOrPull } from './model-choice.js';

/**
 * `--control model=<registry id>` (control_v11p_sd15_canny, …): the ControlNet's family checked against the model's
 * before anything downloads, then pulled as models are (with --yes, after a question on a terminal, else refused with
 * the pull command) and converted once into the cache, named by its id as sd-webui-controlnet names the file users
 * hold. Each such unit then names the converted folder; other model= values (paths) pass through unchanged. A unit's
 * detector network is chosen first (chooseDetector).
 */
export async function chooseControlNets(specs: readonly ControlSpec[], files: ModelFiles, options: { offline: boolean; yes: boolean; quiet: boolean }): Promise<ControlSpec[]> {
  const registry = loadRegistry();
  return Promise.all(specs.map(async (given, i) => {
    const label = specs.length > 1 ? `--control #${i + 1}` : '--control';
    const spec = await chooseDetector(given, registry, label, options);
    const entry = findControlNet(registry, spec.model);
    if (!entry) return spec;
    refuseOtherFamily(`${label}: model=${entry.id}`, entry, 'ControlNet', files);
    const pulled = await resolveOrPull(spec.model, { offline: options.offline }, options.yes, options.quiet);
    const progress = convertProgress({ quiet: options.quiet });
    try {
      return { ...spec, model: await readPulled(entry.id, () => ensureConvertedControlNet(pulled.dir, convertedCache(), progress.listener, entry.id)) };
    } finally {
      progress.stop();
    }
  }));
}

/**
 * detector=<registry id> (annotators-hed, …), or none given for a type that runs a network: the type's default id,
 * pulled as models are (after the picture's size is checked), the unit then naming the pulled weight file (dwpose: the
 * pulled folder); the same for OpenPose's hand-detector= and face-detector= when the type runs them. A path passes
 * through unchanged.
 */
async function chooseDetector(spec: ControlSpec, registry: Registry, label: string, options: { offline: boolean; yes: boolean; quiet: boolean }): Promise<ControlSpec> {
  const network = DETECTORS[spec.type];
  if (!network) return spec;
  // A picture too large for the network is refused before a download, not after it (readControlUnits checks it
  // again before the network runs, which covers a network already pulled). res=pixel-perfect needs the painted size
  // (an init image's, read later), so it waits for that check.
  const refuseLargePicture = async (): Promise<void> => {
    if (spec.res !== PIXEL_PERFECT) checkDetectorPictureSize((await readImageFile(spec.image, `${label} image`)).rgb, `${label} image`, spec.type, spec.res);
  };
  const choose = async (given: string | undefined, net: DetectorNetwork, field: string): Promise<string | undefined> => {
    const id = given ?? net.id;
    const entry = findPreprocessor(registry, id);
    if (!entry) {
      if (given !== undefined) return given;
      throw new UsageError(`${label}: type=${spec.type} needs ${field}=${net.file} (the registry has no ${net.id} to pull)`);
    }
    if (entry.kind !== net.kind) throw new UsageError(`${label}: ${field}=${id} is a ${entry.kind} network; type=${spec.type} runs ${net.kind} (${field}=${net.id})`);
    const pulled = await resolveOrPull(id, { offline: options.offline }, options.yes, options.quiet, refuseLargePicture);
    // DWPose's two files are given as their folder.
    return net.kind === 'dwpose' ? pulled.dir : join(pulled.dir, entry.files[0]!);
  };
  const chosen: ControlSpec = { ...spec, detector: await choose(spec.detector, network, 'detector') };
  for (const name of poseNetworksOf(spec.type)) {
    const pose = POSE_NETWORKS[name];
    chosen[pose.field] = await choose(spec[pose.field], pose, pose.field);
  }
  return chosen;
}
