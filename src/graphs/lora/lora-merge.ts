import { open } from 'node:fs/promises';
import { floatToHalf } from '../../onnx/dtype.js';
import { pointAtExternalData, readFloatInitializer } from '../../onnx/initializers.js';
import { ElemType, Message, ModelProto } from '../../onnx/proto.js';
import { CheckpointError } from '../errors.js';
import { UnsupportedModuleError, deltaKind, moduleDelta, type ModuleDelta, type ModuleParts } from './lora-delta.js';
import { openMatMul, type MatMul } from './delta-matmul.js';
import type { LoraPrefix } from './lora-keys.js';
import { loraTargets, type LoraTarget } from './lora-targets.js';

/**
 * A graph with LoRA weight changes merged into its weights: W' = W + Σ multiplier × scale × ΔW
 * (A1111's and diffusers' fuse_lora), the merged tensors written as new external data beside the
 * edited graph, every other initialiser untouched. Bytes and a folder in, bytes and a file of
 * merged tensors (written one tensor at a time) out; apply-loras.ts caches the result per combination.
 */

export interface LoraInput {
  /** For messages: the LoRA's file. */
  label: string;
  /** kohya module name → part → tensor, for this graph's prefix. */
  modules: ReadonlyMap<string, ModuleParts>;
  multiplier: number;
  /** DyLoRA: use only the first `dyn` ranks. */
  dynDim?: number;
}

export interface MergeReport {
  /** Per LoRA, in order: how many modules were merged; those of this graph's prefix that matched no layer, and those of a kind not merged (IA3, OFT, ...). */
  loras: Array<{ merged: number; unmatched: string[]; unsupported: string[] }>;
}

export interface MergedGraph {
  model: Uint8Array;
  result: MergeReport;
  /** The merged tensors, written to `from` (the cache's staging path), for the entry's `file`. */
  data: { file: string; from: string };
}

interface Contribution {
  lora: LoraInput;
  module: string;
  parts: ModuleParts;
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The delta in the target's torch shape. An inpainting UNet's conv_in reads 9 channels where a
 * LoRA made on an ordinary model has 4: the rest get no change (A1111 zero-pads the same way).
 */
function fitted(values: Float32Array, target: LoraTarget, label: string, module: string, shape: number[]): Float32Array {
  const want = target.torchShape;
  if (values.length === numel(want)) return values;
  const [out, inWanted] = want as [number, number];
  const kernel = numel(want.slice(2));
  const inGiven = values.length / (out * kernel);
  if (want.length === 4 && Number.isInteger(inGiven) && inGiven < inWanted) {
    const padded = new Float32Array(numel(want));
    for (let o = 0; o < out; o++) padded.set(values.subarray(o * inGiven * kernel, (o + 1) * inGiven * kernel), o * inWanted * kernel);
    return padded;
  }
  throw new CheckpointError(
    `LoRA ${label}: ${module} changes a weight of shape [${shape.join(', ')}], but this model's ${target.module} is [${want.join(', ')}]; the LoRA was made for another model family (SD 1.x, SD 2.x and SDXL LoRAs do not mix)`,
  );
}

async function deltaOf(parts: ModuleParts, label: string, module: string, dynDim: number | undefined, matmul: MatMul): Promise<ModuleDelta> {
  try {
    return await moduleDelta(parts, matmul, dynDim);
  } catch (err) {
    if (err instanceof UnsupportedModuleError) throw new CheckpointError(`LoRA ${label}: module ${module} ${err.message}; the file is damaged or of an unknown variant`, { cause: err });
    throw err;
  }
}

/** Tile side of the transposing add: both arrays are then walked a cache line at a time. */
const TILE = 32;

/** Adds `factor` × the torch-ordered delta to a weight stored as `layout`. */
function addInto(weight: Float32Array, delta: Float32Array, target: LoraTarget, factor: number): void {
  if (target.layout === 'out-in') {
    for (let i = 0; i < weight.length; i++) weight[i]! += factor * delta[i]!;
    return;
  }
  const [out, inner] = target.torchShape as [number, number];
  for (let o0 = 0; o0 < out; o0 += TILE) {
    const o1 = Math.min(out, o0 + TILE);
    for (let i0 = 0; i0 < inner; i0 += TILE) {
      const i1 = Math.min(inner, i0 + TILE);
      for (let o = o0; o < o1; o++) for (let i = i0; i < i1; i++) weight[i * out + o]! += factor * delta[o * inner + i]!;
    }
  }
}

function encode(values: Float32Array, elemType: number): Uint8Array {
  if (elemType === ElemType.FLOAT) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const half = Uint16Array.from(values, (v) => floatToHalf(v));
  return new Uint8Array(half.buffer);
}

export async function mergeLoras(model: Uint8Array, modelDir: string, prefix: LoraPrefix, loras: readonly LoraInput[], data: { file: string; staging: string }): Promise<MergedGraph> {
  const proto = ModelProto.decode(model);
  const targets = loraTargets(proto.graph, prefix);
  const touched = new Map<LoraTarget, Contribution[]>();
  const report: MergeReport = { loras: [] };
  for (const lora of loras) {
    const entry = { merged: 0, unmatched: [] as string[], unsupported: [] as string[] };
    report.loras.push(entry);
    for (const [module, parts] of lora.modules) {
      if (!module.startsWith(prefix)) continue;
      const target = targets.get(module);
      if (!target) {
        entry.unmatched.push(module);
        continue;
      }
      if (!deltaKind(parts)) {
        entry.unsupported.push(module);
        continue;
      }
      if (lora.multiplier === 0) continue;
      const list = touched.get(target) ?? [];
      list.push({ lora, module, parts });
      touched.set(target, list);
      entry.merged++;
    }
  }
  // Each tensor's message is copied before it is re-pointed at the new file: the copy still says where the original is.
  const plan = [...touched].map(([target, contributions]) => ({ target, contributions, original: Message.decode(target.init.msg.encode()) }));
  let offset = 0;
  for (const { target } of plan) {
    const bytes = numel(target.init.dims) * (target.init.elemType === ElemType.FLOAT ? 4 : 2);
    if (target.init.elemType !== ElemType.FLOAT && target.init.elemType !== ElemType.FLOAT16) {
      throw new CheckpointError(`cannot merge a LoRA into ${target.module}: its weight is not float32 or float16 (a quantized graph?)`);
    }
    pointAtExternalData(target.init.msg, data.file, offset, bytes);
    offset += bytes;
  }
  const { matmul, release } = await openMatMul();
  const out = await open(data.staging, 'w');
  try {
    for (const { target, contributions, original } of plan) {
      const weight = readFloatInitializer({ ...target.init, msg: original }, modelDir);
      for (const { lora, module, parts } of contributions) {
        const delta = await deltaOf(parts, lora.label, module, lora.dynDim, matmul);
        addInto(weight, fitted(delta.values, target, lora.label, module, delta.shape), target, lora.multiplier * delta.scale);
      }
      await out.write(encode(weight, target.init.elemType));
    }
  } finally {
    await out.close();
    await release();
  }
  return { model: proto.encode(), result: report, data: { file: data.file, from: data.staging } };
}
