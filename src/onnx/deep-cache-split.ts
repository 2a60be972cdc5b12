import { ModelLoadError } from '../errors.js';
import { pruneToOutputs } from './graph-prune.js';
import { initializers } from './initializers.js';
import { ModelProto, NodeProto, ValueInfoProto, type GraphProto } from './proto.js';

/**
 * DeepCache (Ma et al. 2023, the `DeepCache` package's DeepCacheSDHelper with cache_branch_id 0)
 * as two graphs cut from one UNet, bytes in, bytes out:
 *
 * - full: the UNet unchanged, plus an output `deep_cache_feature`: the hidden state the last up
 *   block concatenates with the input convolution's output (its skip at branch 0), i.e. the
 *   output of every block below that concatenation;
 * - shallow: the same graph with that value as an input instead, pruned to what out_sample still
 *   needs: the time embedding, conv_in, the last up block's last layer (resnet and attention),
 *   the output norm and conv_out. That is what DeepCache's wrapped modules compute on a step
 *   that reuses the cache (every down block, the mid block and the other up layers return their
 *   cached outputs; only those layers run on fresh inputs).
 *
 * The cut is found by structure, not names: the Conv reading `sample` (through the Casts of an
 * fp16 graph with float32 inputs) is conv_in; its output (or that plus a ControlNet residual
 * input) feeds exactly one Concat, whose other input is the cached feature.
 */

export const DEEP_CACHE_FEATURE = 'deep_cache_feature';

const FEATURE_DIMS = ['deep_cache_batch', 'deep_cache_channels', 'deep_cache_height', 'deep_cache_width'];

export interface DeepCacheGraphs {
  full: Uint8Array;
  shallow: Uint8Array;
  /** Nodes of the shallow graph, and of the source. */
  shallowNodes: number;
  nodes: number;
}

export class DeepCacheSplitError extends ModelLoadError {}

function fail(message: string): never {
  throw new DeepCacheSplitError(`cannot split the UNet for --deep-cache: ${message}`);
}

interface Cut {
  /** The value the last up block concatenates with conv_in's output. */
  feature: string;
  elemType: number;
}

function findCut(graph: GraphProto): Cut {
  const nodes = graph.nodes;
  const inputs = new Set(graph.inputs.map((i) => i.name));
  const consumers = new Map<string, NodeProto[]>();
  for (const node of nodes) for (const input of node.inputs) consumers.set(input, [...(consumers.get(input) ?? []), node]);
  const uses = (value: string) => consumers.get(value) ?? [];
  if (!inputs.has('sample')) fail('the graph has no input named sample');
  let value = 'sample';
  for (let cast = uses(value).find((n) => n.opType === 'Cast'); cast && uses(value).length === 1; cast = uses(value).find((n) => n.opType === 'Cast')) value = cast.outputs[0]!;
  const convIn = uses(value).find((n) => n.opType === 'Conv' && n.inputs[0] === value);
  if (!convIn) fail('no Conv reads the sample (a quantized or unfamiliar export)');
  const skip = convIn.outputs[0]!;
  // A ControlNet-ready UNet adds its first residual input to conv_in's output before the skip.
  const skips = [skip, ...uses(skip).filter((n) => n.opType === 'Add' && n.inputs.some((i) => inputs.has(i))).map((n) => n.outputs[0]!)];
  const concats = skips.flatMap((s) => uses(s).filter((n) => n.opType === 'Concat' && n.inputs.length === 2 && n.inputs[1] === s));
  if (concats.length !== 1) fail(`conv_in's output feeds ${concats.length} skip concatenations; expected 1`);
  const feature = concats[0]!.inputs[0]!;
  const weight = initializers(graph).find((i) => i.name === convIn.inputs[1]);
  if (!weight) fail("conv_in's weight is not an initialiser");
  return { feature, elemType: weight.elemType };
}

export function splitForDeepCache(model: Uint8Array): DeepCacheGraphs {
  const full = ModelProto.decode(model);
  const cut = findCut(full.graph);
  const nodes = full.graph.nodes.length;
  // An Identity gives the output a stable name whatever the exporter called the value.
  full.graph.appendNode(NodeProto.create('Identity', `${DEEP_CACHE_FEATURE}/Identity`, [cut.feature], [DEEP_CACHE_FEATURE], []));
  full.graph.appendOutput(ValueInfoProto.tensor(DEEP_CACHE_FEATURE, cut.elemType, FEATURE_DIMS));

  const shallow = ModelProto.decode(model);
  const graph = shallow.graph;
  for (const node of graph.nodes) if (node.inputs.includes(cut.feature)) node.inputs = node.inputs.map((n) => (n === cut.feature ? DEEP_CACHE_FEATURE : n));
  graph.appendInput(ValueInfoProto.tensor(DEEP_CACHE_FEATURE, cut.elemType, FEATURE_DIMS));
  const { kept } = pruneToOutputs(graph);
  return { full: full.encode(), shallow: shallow.encode(), shallowNodes: kept, nodes };
}
