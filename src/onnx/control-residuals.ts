import { ModelLoadError } from '../errors.js';
import { intAttr } from './node-builders.js';
import { ModelProto, NodeProto, ValueInfoProto } from './proto.js';

/**
 * ControlNet residual inputs added to a UNet that has none, bytes in, bytes out: what diffusers'
 * UNet2DConditionModel does with down_block_additional_residuals and mid_block_additional_residual,
 * under the names optimum's ControlNet exports give them (down_block_additional_residual_0…N-1,
 * mid_block_additional_residual), so src/pipeline/unet.ts feeds it like such an export.
 *
 * Each skip connection the up blocks concatenate gets its residual added where it is concatenated
 * (only there: the down path runs on the value without it, as diffusers adds the residuals to the
 * saved res samples after the down pass), and the mid block's output gets the mid residual before
 * the first up block reads it. The skips are found by structure: the UNet's channel Concats
 * (axis 1) of two values, in file order the first up block's first (it reads the mid block's output
 * and the deepest skip) to the last up block's last (conv_in's output), as src/graphs/unet.ts writes
 * them; torch.onnx exports diffusers' UNet in the same order.
 */

export const RESIDUAL_INPUT = (i: number): string => `down_block_additional_residual_${i}`;
export const MID_RESIDUAL_INPUT = 'mid_block_additional_residual';

export class ControlResidualError extends ModelLoadError {}

/** `channels`: each down residual's channels, shallowest first, then the mid block's. */
export function addControlResiduals(model: Uint8Array, channels: readonly number[]): Uint8Array {
  const proto = ModelProto.decode(model);
  const graph = proto.graph;
  if (graph.inputs.some((i) => /residual/.test(i.name))) throw new ControlResidualError('the UNet already takes ControlNet residuals');
  const sample = graph.inputs.find((i) => i.name === 'sample');
  if (!sample?.tensorType) throw new ControlResidualError('the UNet has no typed input named sample');
  const elemType = sample.tensorType.elemType;
  const skips = graph.nodes.filter((n) => n.opType === 'Concat' && n.inputs.length === 2 && intAttr(n, 'axis') === 1);
  const downs = channels.length - 1;
  if (skips.length !== downs) {
    throw new ControlResidualError(`the UNet concatenates ${skips.length} skip connections where its config makes ${downs}; it cannot take ControlNet residuals`);
  }
  const input = (name: string, width: number, dims: string[]) => {
    const value = ValueInfoProto.tensor(name, elemType, dims);
    value.tensorType!.dims![1]!.value = width;
    graph.appendInput(value);
  };
  const added: NodeProto[] = [];
  const add = (value: string, residual: string): string => {
    const out = `${residual}/added`;
    added.push(NodeProto.create('Add', `/${residual}/Add`, [value, residual], [out], []));
    return out;
  };
  skips.forEach((concat, k) => {
    // The k-th concatenation reads the skip saved (downs - 1 - k)-th on the way down.
    const i = downs - 1 - k;
    input(RESIDUAL_INPUT(i), channels[i]!, ['batch_size', `residual_${i}_channels`, `residual_${i}_height`, `residual_${i}_width`]);
    const [x, skip] = concat.inputs as [string, string];
    concat.inputs = [k === 0 ? add(x, MID_RESIDUAL_INPUT) : x, add(skip, RESIDUAL_INPUT(i))];
  });
  input(MID_RESIDUAL_INPUT, channels[downs]!, ['batch_size', 'mid_residual_channels', 'mid_residual_height', 'mid_residual_width']);
  // Nodes run in file order: each Add goes before everything (its inputs are graph inputs or come earlier).
  reorderBefore(graph.nodes, skips, added, proto);
  return proto.encode();
}

/**
 * Places each added Add right before the Concat that reads it, keeping the file in a topological
 * order (the Adds read values made before that Concat and graph inputs).
 */
function reorderBefore(nodes: NodeProto[], concats: NodeProto[], added: NodeProto[], proto: ModelProto): void {
  const readers = new Map(concats.map((c) => [c.msg, added.filter((a) => c.inputs.includes(a.outputs[0]!))]));
  const order = nodes.flatMap((n) => [...(readers.get(n.msg) ?? []), n]);
  const graph = proto.graph;
  graph.filter({ node: () => false, input: () => true });
  for (const node of order) graph.appendNode(node);
}
