import { UsageError } from '../errors.js';
import { ensureConvertedControlNet } from '../graphs/controlnet-convert.js';
import { findControlNet, loadRegistry, type ControlNetEntry } from '../models/index.js';
import type { ModelFiles } from '../pipeline/model-files.js';
import type { ControlSpec } from '../settings/control-spec.js';
import { convertedCache } from './convert.js';
import { convertProgress } from './convert-progress.js';
import { resolveOrPull } from './model-choice.js';
import { isSdxlLatents } from './vae-choice.js';

/**
 * `--control model=<registry id>` (control_v11p_sd15_canny, …): the ControlNet's family checked against the model's
 * before anything downloads, then pulled as models are (with --yes, after a question on a terminal, else refused with
 * the pull command) and converted once into the cache, named by its id as sd-webui-controlnet names the file users
 * hold. Each such unit then names the converted folder; other model= values (paths) pass through unchanged.
 */
export async function chooseControlNets(specs: readonly ControlSpec[], files: ModelFiles, options: { offline: boolean; yes: boolean; quiet: boolean }): Promise<ControlSpec[]> {
  const registry = loadRegistry();
  return Promise.all(specs.map(async (spec, i) => {
    const entry = findControlNet(registry, spec.model);
    if (!entry) return spec;
    refuseOtherFamily(entry, files, specs.length > 1 ? `--control #${i + 1}` : '--control');
    const pulled = await resolveOrPull(spec.model, { offline: options.offline }, options.yes, options.quiet);
    const progress = convertProgress({ quiet: options.quiet });
    try {
      return { ...spec, model: await ensureConvertedControlNet(pulled.dir, convertedCache(), progress.listener, entry.id) };
    } finally {
      progress.stop();
    }
  }));
}

/** An SD 1.x/2.x ControlNet cannot condition an SDXL model, nor the reverse (SDXL latents are told apart by the VAE's scaling factor). */
function refuseOtherFamily(entry: ControlNetEntry, files: ModelFiles, label: string): void {
  const sdxl = isSdxlLatents(files.vaeScalingFactor);
  if ((entry.family === 'sdxl') === sdxl) return;
  const family = { sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL' }[entry.family];
  throw new UsageError(`${label}: model=${entry.id} is an ${family} ControlNet and ${files.dir} is ${sdxl ? 'an SDXL' : 'an SD 1.x/2.x'} model; use a ControlNet of the model's family`);
}
