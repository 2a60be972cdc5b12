import { CheckpointError } from './errors.js';
import type { PendingWeight } from './onnx-builder.js';

/**
 * The weights one graph is built from, named as diffusers and transformers name the module
 * parameters (`down_blocks.0.resnets.1.conv1.weight`, `text_model.encoder.layers.3.mlp.fc1.bias`)
 * whatever file layout they come from: a `locate` function maps each such name to a tensor of
 * the checkpoint (and, for packed projections, a row range of it). The built graph's initialisers
 * carry these names, and `records` keeps, per initialiser, the checkpoint key, rows and layout it
 * came from — what a LoRA merge needs to find the tensor a LoRA key patches.
 */

/** What a checkpoint file offers: its tensors by key, read one at a time. */
export interface TensorStore {
  /** The file (or folder) the tensors come from, for messages. */
  readonly label: string;
  keys(): Iterable<string>;
  describe(key: string): { shape: number[]; dtype: string } | undefined;
  /** float32 values in C order; refuses dtypes other than F16, BF16 and F32. */
  read(key: string): Promise<Float32Array>;
}

/** Where a graph weight comes from: a checkpoint tensor, or a range of its rows (OpenCLIP's packed q/k/v). */
export interface WeightSource {
  key: string;
  rows?: readonly [number, number];
  /** The file stores the torch weight transposed (OpenCLIP's text_projection: [width, projection], used as x @ P). */
  transposed?: boolean;
}

/**
 * How a stored tensor becomes the initialiser:
 * - `as-is`: the same shape (convolutions, embeddings, norms' scales);
 * - `linear`: a torch Linear weight [out, in] (or a 1x1 convolution [out, in, 1, 1]) transposed
 *   to [in, out] for MatMul;
 * - `channels`: a per-channel vector [C] as [C, 1, 1], to scale feature maps [N, C, H, W].
 */
export type Layout = 'as-is' | 'linear' | 'channels';

export interface WeightRecord {
  initializer: string;
  key: string;
  rows?: readonly [number, number];
  layout: Layout;
}

export class ComponentWeights {
  readonly records: WeightRecord[] = [];

  constructor(
    readonly component: string,
    private readonly store: TensorStore,
    private readonly locate: (name: string) => WeightSource | undefined,
  ) {}

  private source(name: string): { source: WeightSource; shape: number[] } | undefined {
    const source = this.locate(name);
    const described = source && this.store.describe(source.key);
    if (!source || !described) return undefined;
    const shape = source.transposed ? [...described.shape].reverse() : [...described.shape];
    if (source.rows) shape[0] = source.rows[1] - source.rows[0];
    return { source, shape };
  }

  /** The tensor's shape as stored (rows applied), for reading hyper-parameters off the weights. */
  shape(name: string): number[] {
    const found = this.source(name);
    if (!found) throw this.missing(name);
    return found.shape;
  }

  /**
   * The initialiser for `name`, checked against `expected` (undefined entries are free): a
   * tensor of another shape is a checkpoint of another architecture, refused before anything
   * is written.
   */
  take(name: string, layout: Layout, expected: ReadonlyArray<number | undefined>): PendingWeight {
    const found = this.source(name);
    if (!found) throw this.missing(name);
    const { source, shape } = found;
    const stored = layout === 'linear' && shape.length === 4 && shape[2] === 1 && shape[3] === 1 ? shape.slice(0, 2) : shape;
    const dims = layout === 'linear' ? [stored[1]!, stored[0]!] : layout === 'channels' ? [shape[0]!, 1, 1] : shape;
    const logical = layout === 'linear' ? stored : layout === 'channels' ? shape : dims;
    const fits = (layout === 'linear' ? stored.length === 2 : layout === 'channels' ? shape.length === 1 : true) &&
      logical.length === expected.length && expected.every((e, i) => e === undefined || e === logical[i]);
    if (!fits) {
      throw new CheckpointError(
        `${this.store.label}: tensor ${source.key} has shape [${shape.join(', ')}], expected [${expected.map((e) => e ?? '?').join(', ')}] for the ${this.component}'s ${name} (a checkpoint of another architecture, or damaged)`,
      );
    }
    this.records.push({ initializer: name, key: source.key, ...(source.rows ? { rows: source.rows } : {}), layout });
    return { name, dims, read: async () => this.values(source, shape, layout) };
  }

  private async values(source: WeightSource, shape: number[], layout: Layout): Promise<Float32Array> {
    const all = await this.store.read(source.key);
    if (source.transposed) return layout === 'linear' ? all : transpose(all, shape[1]!, shape[0]!);
    const rowSize = shape.slice(1).reduce((n, d) => n * d, 1);
    const values = source.rows ? all.subarray(source.rows[0] * rowSize, source.rows[1] * rowSize) : all;
    return layout === 'linear' ? transpose(values, shape[0]!, rowSize) : values;
  }

  private missing(name: string): CheckpointError {
    const source = this.locate(name);
    const where = source ? ` (checkpoint key ${source.key})` : '';
    return new CheckpointError(`${this.store.label}: the ${this.component} has no tensor for ${name}${where}; the checkpoint is incomplete or not a Stable Diffusion 1.x/2.x model`);
  }
}

/**
 * In 16 × 16 tiles, so the strided writes of one tile share cache lines: a row at a time, each write
 * landed on another line (SD 1.5's [10240, 1280] feed-forward weight: 91 -> 49 ms, [5120, 1280] 51 -> 16 ms).
 */
const TILE = 16;

/** [rows, cols] row-major to [cols, rows]. */
function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(r0 + TILE, rows);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols);
      for (let r = r0; r < r1; r++) {
        const from = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = values[from + c]!;
      }
    }
  }
  return out;
}
