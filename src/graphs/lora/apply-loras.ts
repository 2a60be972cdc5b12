import { cachedModelEditAsync } from '../../onnx/edited-model-cache.js';
import { CheckpointError } from '../errors.js';
import type { ModuleParts } from './lora-delta.js';
import { openLoraFile, readLoraTensors, type LoraFile } from './lora-file.js';
import { mergeLoras, type MergeReport } from './lora-merge.js';

/**
 * LoRAs merged into a model's text encoder and UNet graphs at load, each edited graph cached per
 * (graph, LoRA contents, multipliers) so the merge runs once per combination; what the pipeline
 * then opens is an ordinary graph with other weights.
 */

/** One LoRA as a request or a `<lora:name:te:unet>` tag gives it. */
export interface LoraChoice {
  path: string;
  /** The name the prompt used (A1111's "mentioned name"; default: the file's name). */
  name?: string;
  /** Multiplier of the text-encoder modules (A1111's te, the tag's first number). */
  te: number;
  /** Multiplier of the UNet modules (A1111's unet: the tag's second number, else te). */
  unet: number;
  /** DyLoRA rank cut (A1111's dyn). */
  dyn?: number;
}

export interface AppliedLoras {
  textEncoder: string;
  unet: string;
  /** Per LoRA, in order: its name and A1111's short hash (the "Lora hashes" record). */
  loras: Array<{ name: string; hash: string }>;
  /** Per LoRA: keys of its file that patch nothing in this model (names and count), for one warning line. */
  unused: Array<{ name: string; count: number; examples: string[] }>;
}

/** What the family a model belongs to says about LoRAs: SD 1.x and 2.x are told apart by the text encoder's width. */
export interface ModelFamily {
  textWidth: number;
}

/** Bumped when a change here changes the merged weights for the same inputs. */
const MERGE_VERSION = 1;
const DATA_FILE = 'lora-weights.bin';

function refuseFamily(file: LoraFile, family: ModelFamily): void {
  const base = file.metadata['ss_base_model_version'] ?? '';
  if (file.sdxl || base.startsWith('sdxl')) throw new CheckpointError(`LoRA ${file.name} (${file.path}) was made for SDXL, which diffuse does not run; use an SD 1.x/2.x LoRA`);
  const v2 = file.metadata['ss_v2'];
  if (v2 === 'True' && family.textWidth !== 1024) throw new CheckpointError(`LoRA ${file.name} was made for SD 2.x and this is an SD 1.x model; use a LoRA for SD 1.x`);
  if (v2 === 'False' && family.textWidth === 1024) throw new CheckpointError(`LoRA ${file.name} was made for SD 1.x and this is an SD 2.x model; use a LoRA for SD 2.x`);
}

async function mergedGraph(source: string, prefix: 'lora_unet_' | 'lora_te_', files: readonly LoraFile[], choices: readonly LoraChoice[], cacheDir: string): Promise<{ path: string; report: MergeReport } | undefined> {
  const multiplier = (c: LoraChoice) => (prefix === 'lora_te_' ? c.te : c.unet);
  const relevant = files.some((f, i) => multiplier(choices[i]!) !== 0 && [...f.modules.keys()].some((m) => m.startsWith(prefix)));
  if (!relevant) return undefined;
  const edited = await cachedModelEditAsync<MergeReport>({
    source,
    cacheDir,
    label: prefix === 'lora_te_' ? 'text-encoder-lora' : 'unet-lora',
    editKey: { lora: MERGE_VERSION, loras: files.map((f, i) => ({ content: f.contentHash, multiplier: multiplier(choices[i]!), dyn: choices[i]!.dyn ?? null })) },
    edit: async (model, sourceDir, staging) => {
      const inputs = await Promise.all(
        files.map(async (f, i) => ({
          label: f.name,
          modules: (await readLoraTensors(f, (m) => m.startsWith(prefix))) as ReadonlyMap<string, ModuleParts>,
          multiplier: multiplier(choices[i]!),
          ...(choices[i]!.dyn !== undefined ? { dynDim: choices[i]!.dyn } : {}),
        })),
      );
      return mergeLoras(model, sourceDir, prefix, inputs, { file: DATA_FILE, staging });
    },
  });
  return { path: edited.path, report: edited.result };
}

/** Opens the LoRAs, refuses those of another family, and returns the merged graphs' paths. */
export async function applyLoras(graphs: { textEncoder: string; unet: string }, choices: readonly LoraChoice[], family: ModelFamily, cacheDir: string): Promise<AppliedLoras> {
  const files = await Promise.all(choices.map((c) => openLoraFile(c.path)));
  for (const f of files) refuseFamily(f, family);
  const text = await mergedGraph(graphs.textEncoder, 'lora_te_', files, choices, cacheDir);
  const unet = await mergedGraph(graphs.unet, 'lora_unet_', files, choices, cacheDir);
  const unused = files.map((f, i) => {
    const keysOf = (modules: readonly string[]) => modules.flatMap((m) => [...(f.modules.get(m)?.values() ?? [])].map((p) => p.key));
    const notMerged = [text, unet].flatMap((r) => {
      const entry = r?.report.loras[i];
      return entry ? [...entry.unmatched, ...entry.unsupported] : [];
    });
    // Modules of a graph that was not edited (its multiplier 0) are not unused: they were switched off.
    const keys = [...f.unknownKeys, ...keysOf(notMerged)];
    return { name: choices[i]!.name ?? f.name, count: keys.length, examples: keys.slice(0, 3) };
  });
  const matched = files.map((_, i) => [text, unet].reduce((n, r) => n + (r?.report.loras[i]?.merged ?? 0), 0));
  files.forEach((f, i) => {
    const anyOn = choices[i]!.te !== 0 || choices[i]!.unet !== 0;
    if (anyOn && matched[i] === 0) {
      throw new CheckpointError(`LoRA ${f.name} (${f.path}) patches none of this model's layers (${f.modules.size} modules, e.g. ${[...f.modules.keys()][0]}); it was made for another model family`);
    }
  });
  return {
    textEncoder: text?.path ?? graphs.textEncoder,
    unet: unet?.path ?? graphs.unet,
    loras: files.map((f, i) => ({ name: choices[i]!.name ?? f.name, hash: f.a1111Hash })),
    unused: unused.filter((u) => u.count > 0),
  };
}
