import { UsageError } from '../errors.js';
import type { Family } from '../models/registry.js';
import type { ModelFiles } from '../pipeline/model-files.js';
import { isSdxlLatents } from './vae-choice.js';

const FAMILY_NAMES: Readonly<Record<Family, string>> = { sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL' };

/**
 * A registry entry made for SD 1.x/2.x cannot serve an SDXL model, nor the reverse (SDXL latents are told apart by the
 * VAE's scaling factor): refused in one line before anything downloads. `what` names the entry as the user gave it.
 */
export function refuseOtherFamily(what: string, entry: { family: Family }, kind: string, files: ModelFiles): void {
  const sdxl = isSdxlLatents(files.vaeScalingFactor);
  if ((entry.family === 'sdxl') === sdxl) return;
  throw new UsageError(`${what} is an ${FAMILY_NAMES[entry.family]} ${kind} and ${files.dir} is ${sdxl ? 'an SDXL' : 'an SD 1.x/2.x'} model; use a ${kind} of the model's family`);
}
