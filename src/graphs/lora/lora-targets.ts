import { initializers, type InitializerInfo } from '../../onnx/initializers.js';
import type { GraphProto, NodeProto } from '../../onnx/proto.js';
import { compvisAlias, kohyaName, type LoraPrefix, type UnetLayout } from './lora-keys.js';

/**
 * The layers of a graph a LoRA can patch, found from the graph itself: every MatMul, Gemm and
 * Conv whose weight is an initialiser (directly, or through the Cast of an fp16 graph), named by
 * the module path its node's scope spells (`/down_blocks.0/attentions.0/.../to_q/MatMul` is
 * `down_blocks.0.attentions.0....to_q`). torch.onnx names nodes that way, so this holds for the
 * graphs diffuse builds and for optimum's exports alike — including optimum's MatMul weights,
 * which torch.onnx leaves unnamed (`onnx::MatMul_1745`). A weight read by more than one node is
 * no single module's and is left out.
 */

/**
 * How the initialiser stores the torch weight [out, in, (kh, kw)]:
 * `in-out` (MatMul, or Gemm without transB) holds its transpose; `out-in` (Gemm with transB,
 * Conv) holds it as is.
 */
export type StoredLayout = 'in-out' | 'out-in';

export interface LoraTarget {
  /** The module path, e.g. down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q. */
  module: string;
  init: InitializerInfo;
  layout: StoredLayout;
  /** The torch weight's shape: [out, in] or [out, in, kh, kw]. */
  torchShape: number[];
}

/** Targets by every kohya-style name that denotes them (the diffusers name and, for the UNet, A1111's CompVis alias). */
export type TargetIndex = Map<string, LoraTarget>;

function modulePath(node: NodeProto): string | undefined {
  const parts = node.name.split('/').filter((p) => p !== '');
  if (parts.length < 2) return undefined;
  return parts.slice(0, -1).join('.');
}

function intAttribute(node: NodeProto, name: string): number | undefined {
  const attr = node.attributes.find((a) => a.name === name);
  const value = attr?.msg.int(3);
  return value === undefined ? undefined : Number(value);
}

/** The UNet's block layout, read off its own module names (the largest resnet index of a down block, up blocks with attentions). */
function unetLayout(modules: readonly string[]): UnetLayout {
  let resnets = 0;
  const attentionUpBlocks = new Set<number>();
  for (const m of modules) {
    const down = /^down_blocks\.\d+\.resnets\.(\d+)\./.exec(m);
    if (down) resnets = Math.max(resnets, Number(down[1]) + 1);
    const up = /^up_blocks\.(\d+)\.attentions\./.exec(m);
    if (up) attentionUpBlocks.add(Number(up[1]));
  }
  return { layersPerBlock: resnets, attentionUpBlocks };
}

export function loraTargets(graph: GraphProto, prefix: LoraPrefix): TargetIndex {
  const inits = new Map(initializers(graph).map((i) => [i.name, i]));
  const casts = new Map<string, string>();
  const readers = new Map<string, number>();
  for (const node of graph.nodes) {
    if (node.opType === 'Cast' && inits.has(node.inputs[0]!)) casts.set(node.outputs[0]!, node.inputs[0]!);
    for (const input of node.inputs) readers.set(input, (readers.get(input) ?? 0) + 1);
  }
  const found: LoraTarget[] = [];
  const seen = new Set<string>();
  for (const node of graph.nodes) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm' && node.opType !== 'Conv') continue;
    const weightValue = node.inputs[1] ?? '';
    const initName = inits.has(weightValue) ? weightValue : casts.get(weightValue);
    const init = initName === undefined ? undefined : inits.get(initName);
    const module = modulePath(node);
    if (!init || !module || (readers.get(weightValue) ?? 0) > 1 || seen.has(init.name)) continue;
    seen.add(init.name);
    let target: LoraTarget;
    if (node.opType === 'Conv') {
      if (init.dims.length !== 4) continue;
      target = { module, init, layout: 'out-in', torchShape: [...init.dims] };
    } else {
      if (init.dims.length !== 2) continue;
      const transposed = node.opType === 'Gemm' && intAttribute(node, 'transB') === 1;
      const [a, b] = init.dims as [number, number];
      target = transposed ? { module, init, layout: 'out-in', torchShape: [a, b] } : { module, init, layout: 'in-out', torchShape: [b, a] };
    }
    found.push(target);
  }
  const index: TargetIndex = new Map(found.map((t) => [kohyaName(prefix, t.module), t]));
  if (prefix !== 'lora_unet_') return index;
  const layout = unetLayout(found.map((t) => t.module));
  for (const [name, target] of [...index]) {
    const alias = compvisAlias(name, layout);
    if (alias && !index.has(alias)) index.set(alias, target);
  }
  return index;
}
