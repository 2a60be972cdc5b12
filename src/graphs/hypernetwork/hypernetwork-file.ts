import { basename, extname } from 'node:path';
import { EmbeddingError } from '../../text/embedding-error.js';
import { PickleTuple, type PickleValue } from '../../text/pickle-reader.js';
import { TorchTensorRef, openTorchCheckpoint } from '../../text/torch-file.js';
import { CheckpointError } from '../errors.js';

/**
 * An AUTOMATIC1111 hypernetwork (.pt as its Hypernetwork.save writes it): for each context width
 * (320, 640, 768, 1280 for SD 1.x) a pair of small MLPs, one for the attention's k input and one
 * for its v input, plus how they are built (layer_structure, activation_func, is_layer_norm,
 * activate_output). Read through the pickle reader, which runs nothing.
 *
 * Each MLP is A1111's HypernetworkModule: Linear layers, the activation after every one but the
 * last (after the last too with activate_output), a LayerNorm after each with is_layer_norm;
 * dropout does nothing at inference. Its forward is x + mlp(x) × multiplier. Which Sequential
 * index holds what depends on the dropout settings, so the layers are read off the state dict:
 * 2-d weights are Linear layers and 1-d ones LayerNorms, in index order.
 */

export interface DenseLayer {
  kind: 'linear' | 'layer-norm';
  /** Linear: [out, in] as torch stores it; LayerNorm: [width]. */
  weight: { shape: number[]; values: Float32Array };
  bias: Float32Array;
}

export interface HypernetworkMlp {
  layers: DenseLayer[];
}

export interface Hypernetwork {
  name: string;
  /** Context width → [k MLP, v MLP]. */
  sizes: Map<number, [HypernetworkMlp, HypernetworkMlp]>;
  /** The activation's A1111 name (lower case), or undefined for none ('linear' or absent). */
  activation: string | undefined;
  activateOutput: boolean;
}

function fail(path: string, message: string): never {
  throw new CheckpointError(`hypernetwork ${path}: ${message}`);
}

/** A1111's fix_old_state_dict: the first files named the two layers linear1/linear2. */
const OLD_NAMES: Readonly<Record<string, string>> = { 'linear1.weight': 'linear.0.weight', 'linear1.bias': 'linear.0.bias', 'linear2.weight': 'linear.1.weight', 'linear2.bias': 'linear.1.bias' };

function mlp(path: string, value: PickleValue, size: number): HypernetworkMlp {
  if (!(value instanceof Map)) fail(path, `the layers of width ${size} are not a state dict`);
  const byIndex = new Map<number, { weight?: TorchTensorRef; bias?: TorchTensorRef }>();
  for (const [rawKey, tensor] of value) {
    const key = typeof rawKey === 'string' ? (OLD_NAMES[rawKey] ?? rawKey) : '';
    const m = /^linear\.(\d+)\.(weight|bias)$/.exec(key);
    if (!m || !(tensor instanceof TorchTensorRef)) fail(path, `unexpected entry '${String(rawKey)}' in the layers of width ${size}`);
    const entry = byIndex.get(Number(m[1])) ?? {};
    entry[m[2] as 'weight' | 'bias'] = tensor;
    byIndex.set(Number(m[1]), entry);
  }
  const layers = [...byIndex.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, { weight, bias }]): DenseLayer => {
      if (!weight || !bias) fail(path, `layer ${index} of width ${size} lacks its weight or bias`);
      const kind = weight.shape.length === 2 ? 'linear' : weight.shape.length === 1 ? 'layer-norm' : fail(path, `layer ${index} of width ${size} has a ${weight.shape.length}-d weight`);
      return { kind, weight: { shape: weight.shape, values: weight.read() }, bias: bias.read() };
    });
  let width = size;
  for (const layer of layers) {
    if (layer.kind === 'linear') {
      const [out, inner] = layer.weight.shape as [number, number];
      if (inner !== width || layer.bias.length !== out) fail(path, `a layer of width ${size} maps ${inner} to ${out} values where ${width} come in`);
      width = out;
    } else if (layer.weight.shape[0] !== width || layer.bias.length !== width) fail(path, `a layer norm of width ${size} does not fit its layer`);
  }
  if (width !== size || !layers.some((l) => l.kind === 'linear')) fail(path, `the layers of width ${size} do not map ${size} values back to ${size}`);
  return { layers };
}

export function readHypernetwork(path: string): Hypernetwork {
  let opened;
  try {
    opened = openTorchCheckpoint(path);
  } catch (err) {
    if (err instanceof EmbeddingError) fail(path, err.message);
    throw err;
  }
  try {
    const top = opened.value;
    if (!(top instanceof Map)) fail(path, 'not a dict (is this an A1111 hypernetwork .pt?)');
    const sizes = new Map<number, [HypernetworkMlp, HypernetworkMlp]>();
    for (const [key, value] of top) {
      if (typeof key !== 'number') continue;
      const pair = value instanceof PickleTuple ? value.items : Array.isArray(value) ? value : [];
      if (pair.length !== 2) fail(path, `width ${key} does not hold a pair of layer stacks (k and v)`);
      sizes.set(key, [mlp(path, pair[0]!, key), mlp(path, pair[1]!, key)]);
    }
    if (sizes.size === 0) fail(path, 'holds no layers (no entries keyed by a width); is this an A1111 hypernetwork?');
    const activation = top.get('activation_func');
    return {
      name: basename(path, extname(path)),
      sizes,
      activation: typeof activation === 'string' && activation !== 'linear' ? activation.toLowerCase() : undefined,
      // A1111 reads files without the entry as activating the output.
      activateOutput: top.get('activate_output') !== false,
    };
  } finally {
    opened.close();
  }
}
