import { ensureConvertedControlNet } from '../graphs/controlnet-convert.js';
import { findControlNet, loadRegistry } from '../models/index.js';
import type { ModelFiles } from '../pipeline/model-files.js';
import type { ControlSpec } from '../settings/control-spec.js';
import { convertedCache } from './convert.js';
import { convertProgress } from './convert-progress.js';
import { refuseOtherFamily } from './family-check.js';
import { resolveOrPull } from './model-choice.js';

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
    refuseOtherFamily(`${specs.length > 1 ? `--control #${i + 1}` : '--control'}: model=${entry.id}`, entry, 'ControlNet', files);
    const pulled = await resolveOrPull(spec.model, { offline: options.offline }, options.yes, options.quiet);
    const progress = convertProgress({ quiet: options.quiet });
    try {
      return { ...spec, model: await ensureConvertedControlNet(pulled.dir, convertedCache(), progress.listener, entry.id) };
    } finally {
      progress.stop();
    }
  }));
}
