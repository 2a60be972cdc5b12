import { cachedModelEditAsync } from '../../onnx/edited-model-cache.js';
import { CheckpointError } from '../errors.js';
import type { ModuleParts } from './lora-delta.js';
import { openLoraFile, readLoraTensors, type LoraFile } from './lora-file.js';
import type { LoraPrefix } from './lora-keys.js';
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

/** The graphs LoRAs patch: SD 1.x/2.x's text encoder and UNet, SDXL's two text encoders and UNet (a refiner's first is absent). */
export interface LoraGraphs {
  textEncoder?: string;
  textEncoder2?: string;
  unet: string;
}

export interface AppliedLoras extends LoraGraphs {
  /** Per LoRA, in order: its name and A1111's short hash (the "Lora hashes" record). */
  loras: Array<{ name: string; hash: string }>;
  /** Per LoRA: keys of its file that patch nothing in this model (names and count), for one warning line. */
  unused: Array<{ name: string; count: number; examples: string[] }>;
}

/** What the family a model belongs to says about LoRAs: SD 1.x and 2.x are told apart by the text encoder's width. */
export interface ModelFamily {
  textWidth: number;
  sdxl: boolean;
}

/** Bumped when a change here changes the merged weights for the same inputs. */
const MERGE_VERSION = 1;
const DATA_FILE = 'lora-weights.bin';

/**
 * Which family a file was trained for: kohya's ss_base_model_version, else its keys — SDXL's
 * lora_te1_/lora_te2_/text_encoder_2., or kohya's single-encoder lora_te_ (SD 1.x/2.x). A UNet-only
 * file without metadata says nothing: its layers match or not (and their shapes refuse it).
 */
function fileFamily(file: LoraFile): 'sdxl' | 'sd' | undefined {
  const base = file.metadata['ss_base_model_version'] ?? '';
  if (base.startsWith('sdxl')) return 'sdxl';
  if (base.startsWith('sd_v')) return 'sd';
  if (file.sdxl) return 'sdxl';
  const keys = [...file.modules.values()].flatMap((parts) => [...parts.values()].map((p) => p.key));
  return keys.some((k) => k.startsWith('lora_te_')) ? 'sd' : undefined;
}

function refuseFamily(file: LoraFile, family: ModelFamily): void {
  const made = fileFamily(file);
  if (made === 'sdxl' && !family.sdxl) throw new CheckpointError(`LoRA ${file.name} (${file.path}) was made for SDXL and this is an SD 1.x/2.x model; use an SD 1.x/2.x LoRA, or an SDXL model`);
  if (made === 'sd' && family.sdxl) throw new CheckpointError(`LoRA ${file.name} (${file.path}) was made for SD 1.x/2.x and this is an SDXL model; use an SDXL LoRA, or an SD 1.x/2.x model`);
  if (family.sdxl) return;
  const v2 = file.metadata['ss_v2'];
  if (v2 === 'True' && family.textWidth !== 1024) throw new CheckpointError(`LoRA ${file.name} was made for SD 2.x and this is an SD 1.x model; use a LoRA for SD 1.x`);
  if (v2 === 'False' && family.textWidth === 1024) throw new CheckpointError(`LoRA ${file.name} was made for SD 1.x and this is an SD 2.x model; use a LoRA for SD 2.x`);
}

const LABELS: Record<LoraPrefix, string> = { lora_unet_: 'unet-lora', lora_te_: 'text-encoder-lora', lora_te2_: 'text-encoder-2-lora' };

async function mergedGraph(source: string | undefined, prefix: LoraPrefix, files: readonly LoraFile[], choices: readonly LoraChoice[], cacheDir: string): Promise<{ path: string; report: MergeReport } | undefined> {
  if (source === undefined) return undefined;
  const multiplier = (c: LoraChoice) => (prefix === 'lora_unet_' ? c.unet : c.te);
  const relevant = files.some((f, i) => multiplier(choices[i]!) !== 0 && [...f.modules.keys()].some((m) => m.startsWith(prefix)));
  if (!relevant) return undefined;
  const edited = await cachedModelEditAsync<MergeReport>({
    source,
    cacheDir,
    label: LABELS[prefix],
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
export async function applyLoras(graphs: LoraGraphs, choices: readonly LoraChoice[], family: ModelFamily, cacheDir: string): Promise<AppliedLoras> {
  const files = await Promise.all(choices.map((c) => openLoraFile(c.path)));
  for (const f of files) refuseFamily(f, family);
  const text = await mergedGraph(graphs.textEncoder, 'lora_te_', files, choices, cacheDir);
  const text2 = await mergedGraph(graphs.textEncoder2, 'lora_te2_', files, choices, cacheDir);
  const unet = await mergedGraph(graphs.unet, 'lora_unet_', files, choices, cacheDir);
  const merged = [text, text2, unet];
  const unused = files.map((f, i) => {
    const keysOf = (modules: readonly string[]) => modules.flatMap((m) => [...(f.modules.get(m)?.values() ?? [])].map((p) => p.key));
    const notMerged = merged.flatMap((r) => {
      const entry = r?.report.loras[i];
      return entry ? [...entry.unmatched, ...entry.unsupported] : [];
    });
    // Modules of a graph that was not edited (its multiplier 0) are not unused: they were switched off.
    const keys = [...f.unknownKeys, ...keysOf(notMerged)];
    return { name: choices[i]!.name ?? f.name, count: keys.length, examples: keys.slice(0, 3) };
  });
  const matched = files.map((_, i) => merged.reduce((n, r) => n + (r?.report.loras[i]?.merged ?? 0), 0));
  files.forEach((f, i) => {
    const anyOn = choices[i]!.te !== 0 || choices[i]!.unet !== 0;
    if (anyOn && matched[i] === 0) {
      throw new CheckpointError(`LoRA ${f.name} (${f.path}) patches none of this model's layers (${f.modules.size} modules, e.g. ${[...f.modules.keys()][0]}); it was made for another model family`);
    }
  });
  return {
    ...(graphs.textEncoder !== undefined ? { textEncoder: text?.path ?? graphs.textEncoder } : {}),
    ...(graphs.textEncoder2 !== undefined ? { textEncoder2: text2?.path ?? graphs.textEncoder2 } : {}),
    unet: unet?.path ?? graphs.unet,
    loras: files.map((f, i) => ({ name: choices[i]!.name ?? f.name, hash: f.a1111Hash })),
    unused: unused.filter((u) => u.count > 0),
  };
}
