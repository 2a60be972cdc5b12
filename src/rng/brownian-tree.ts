/**
 * k-diffusion's BrownianTreeNoiseSampler over torchsde 0.2.6's BrownianTree, value for value:
 * the noise k-diffusion's DPM-Solver++ SDE samplers draw by default, and that AUTOMATIC1111,
 * ComfyUI and diffusers' DPMSolverSDEScheduler use too.
 *
 * A BrownianTree is torchsde's BrownianInterval with halfway_tree=True, tol=1e-6, pool_size=24
 * and no Levy area: a Brownian motion on [t0, t1] whose value over any interval is fixed by the
 * entropy alone. The whole increment is drawn first; each interval, once split at its halfway
 * point, draws the Brownian bridge to its midpoint from a torch generator seeded by
 * numpy.random.SeedSequence(entropy, spawn_key=(node key, depth), pool_size=24). A query is
 * answered by the dyadic intervals that tile it. Times are rounded to 6 decimals; tensors are
 * float32 with torch's rounding after every operation, which is what makes this exact.
 */
import type { NoiseSource } from '../schedulers/types.js';
import { createRng } from './index.js';
import { SeedSequence, type Entropy } from './seed-sequence.js';
import type { TorchCpuKernel } from './torch-cpu.js';
import type { RngKind } from './types.js';

const f32 = Math.fround;

export interface BrownianTreeOptions {
  /** torchsde's tol: times are rounded to -log10(tol) decimals. Default 1e-6 (BrownianTree's). */
  tol?: number;
  /** SeedSequence pool size. Default 24 (BrownianTree's). */
  poolSize?: number;
  /**
   * The torch generator behind torchsde's _randn, that of the tree's device: 'cpu' (k-diffusion
   * on CPU, ComfyUI, which keeps its trees on the CPU, diffusers on CPU) or 'philox' (torch CUDA,
   * as A1111 on an NVIDIA GPU builds the trees on the latents' device). Default 'cpu'.
   */
  rng?: RngKind;
  cpuKernel?: TorchCpuKernel;
  /** How many interval increments to keep; only speed depends on it. Default 45 (torchsde's). */
  cacheSize?: number;
}

/** A node of the dyadic tree: an interval [start, end], split at midway once queried inside. */
class Interval {
  midway: number | undefined;
  /** Seed of the bridge noise that places W(midway) between W(start) and W(end). */
  bridgeSeed = 0;
  left: Interval | undefined;
  right: Interval | undefined;

  constructor(
    readonly start: number,
    readonly end: number,
    readonly parent: Interval | undefined,
    readonly isLeft: boolean,
    /** torchsde's spawn key: the path from the root, one bit per level (1 = right). */
    readonly spawnKey: number,
    readonly depth: number,
  ) {}
}

/**
 * torchsde.BrownianTree(t0, w0=zeros(size), t1, entropy) as k-diffusion builds it: increment(ta,
 * tb) is tree(ta, tb), the float32 increment W(tb) - W(ta) of size values.
 */
export class BrownianTree {
  private readonly root: Interval;
  private readonly rootW: Float32Array;
  private readonly ndigits: number;
  private readonly poolSize: number;
  private readonly cache = new Map<Interval, Float32Array>();
  private readonly cacheSize: number;
  /** Where the next search starts (queries tend to come near the last one); no effect on values. */
  private last: Interval;

  constructor(
    t0: number,
    t1: number,
    readonly size: number,
    private readonly entropy: Entropy,
    private readonly options: BrownianTreeOptions = {},
  ) {
    if (!(t0 <= t1)) throw new RangeError(`Initial time ${t0} should be less than terminal time ${t1}.`);
    const tol = options.tol ?? 1e-6;
    if (!(tol > 0)) throw new RangeError('tol should be positive');
    this.ndigits = -Math.trunc(Math.log10(tol));
    this.poolSize = options.poolSize ?? 24;
    this.cacheSize = options.cacheSize ?? 45;
    this.root = new Interval(this.round(t0), this.round(t1), undefined, false, 0, 0);
    this.last = this.root;
    const [wSeed] = new SeedSequence(entropy, { poolSize: this.poolSize }).generateState(3);
    // The whole increment scales by the unrounded span, a float32 scalar as torch casts it.
    const scale = f32(Math.sqrt(t1 - t0));
    this.rootW = this.randn(wSeed).map((z) => f32(z * scale));
  }

  /** W(tb) - W(ta) for t0 <= ta <= tb <= t1 (out-of-range times are clamped, as torchsde does). */
  increment(ta: number, tb: number): Float32Array {
    const { start, end } = this.root;
    ta = Math.min(Math.max(ta, start), end);
    tb = Math.min(Math.max(tb, start), end);
    if (ta > tb) throw new RangeError(`Query times ta=${ta} and tb=${tb} must respect ta <= tb.`);
    if (ta === tb) return new Float32Array(this.size);
    const pieces: Interval[] = [];
    this.locate(this.last, this.round(ta), this.round(tb), pieces);
    this.last = pieces[pieces.length - 1];
    const w = Float32Array.from(this.incrementOf(pieces[0]));
    for (const piece of pieces.slice(1)) {
      const wi = this.incrementOf(piece);
      for (let k = 0; k < w.length; k++) w[k] = f32(w[k] + wi[k]);
    }
    return w;
  }

  /** Python's round(x, ndigits): the decimal nearest to x's exact binary value, ties to even. */
  private round(x: number): number {
    if (x === 0 || !Number.isFinite(x)) return x;
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, Math.abs(x));
    const bits = view.getBigUint64(0);
    const biased = Number(bits >> 52n);
    const fraction = bits & ((1n << 52n) - 1n);
    const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
    const exponent = (biased === 0 ? 1 : biased) - 1075;
    if (exponent >= 0) return x; // an integer
    const shift = BigInt(-exponent);
    const scaled = mantissa * 10n ** BigInt(this.ndigits);
    let q = scaled >> shift;
    const rest = scaled - (q << shift);
    const half = 1n << (shift - 1n);
    if (rest > half || (rest === half && (q & 1n) === 1n)) q += 1n;
    return Math.sign(x) * Number(`${q}e-${this.ndigits}`);
  }

  /** torchsde's _loc_inner: the existing or new intervals that tile [ta, tb], left to right. */
  private locate(node: Interval, ta: number, tb: number, out: Interval[]): void {
    while (ta < node.start || tb > node.end) node = node.parent!;
    if (ta === node.start && tb === node.end) {
      out.push(node);
      return;
    }
    if (node.midway === undefined) {
      // Split towards the query; the search then continues from the new child (climbing back
      // up when ta lies left of the halfway point), exactly as torchsde walks.
      if (ta === node.start) {
        this.split(node, tb);
        this.locate(node.left!, ta, tb, out);
      } else {
        this.split(node, ta);
        this.locate(node.right!, ta, tb, out);
      }
      return;
    }
    if (tb <= node.midway) return this.locate(node.left!, ta, tb, out);
    if (ta >= node.midway) return this.locate(node.right!, ta, tb, out);
    this.locate(node.left!, ta, node.midway, out);
    this.locate(node.right!, node.midway, tb, out);
  }

  /** The halfway tree: split at the (rounded) halfway point, then again until `at` is a node edge. */
  private split(node: Interval, at: number): void {
    const half = 0.5 * (node.end + node.start);
    const midway = this.round(half);
    node.midway = midway;
    const words = new SeedSequence(this.entropy, {
      spawnKey: [node.spawnKey, node.depth],
      poolSize: this.poolSize,
    }).generateState(4);
    node.bridgeSeed = words[0];
    const key = 2 * node.spawnKey;
    node.left = new Interval(node.start, midway, node, true, key, node.depth + 1);
    node.right = new Interval(midway, node.end, node, false, key + 1, node.depth + 1);
    if (at > midway) this.split(node.right, at);
    else if (at < midway) this.split(node.left, at);
  }

  /** An interval's increment, derived down the tree from the root by Brownian bridges. */
  private incrementOf(node: Interval): Float32Array {
    if (node === this.root) return this.rootW;
    const cached = this.cache.get(node);
    if (cached) {
      this.cache.delete(node);
      this.cache.set(node, cached);
      return cached;
    }
    const parent = node.parent!;
    const wParent = this.incrementOf(parent);
    const midway = parent.midway!;
    // Python-float coefficients, each cast to float32 when it multiplies the float32 tensor.
    const hReciprocal = 1 / (parent.end - parent.start);
    const leftDiff = midway - parent.start;
    const rightDiff = parent.end - midway;
    const leftDiff32 = f32(leftDiff);
    const hReciprocal32 = f32(hReciprocal);
    const std32 = f32(Math.sqrt(leftDiff * rightDiff * hReciprocal));
    const noise = this.randn(parent.bridgeSeed);
    const w = new Float32Array(this.size);
    for (let k = 0; k < w.length; k++) {
      const mean = f32(f32(leftDiff32 * wParent[k]) * hReciprocal32);
      const wLeft = f32(mean + f32(std32 * noise[k]));
      w[k] = node.isLeft ? wLeft : f32(wParent[k] - wLeft);
    }
    this.cache.set(node, w);
    if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
    return w;
  }

  /** torchsde's _randn: a fresh torch generator seeded with one SeedSequence word. */
  private randn(seed: number): Float32Array {
    return createRng(this.options.rng ?? 'cpu', seed, { cpuKernel: this.options.cpuKernel }).randn(this.size);
  }
}

export interface BrownianNoiseOptions {
  /** The latents' shape, batch first, e.g. [B, 4, H / 8, W / 8]. */
  shape: readonly number[];
  /**
   * A list: one tree per image, seed[i] for image i (k-diffusion given a list, A1111's
   * per-image seeds). One seed: one tree over the whole batch tensor (ComfyUI).
   */
  seed: number | bigint | readonly (number | bigint)[];
  /** The schedule's smallest non-zero sigma and its largest (see brownianSigmaRange). */
  sigmaMin: number;
  sigmaMax: number;
  /**
   * Maps a sigma to the tree's time (k-diffusion's transform, identity by default). It must
   * reproduce the reference's float32 tensor arithmetic, e.g. s => Math.fround(-Math.fround(Math.log(s))).
   */
  transform?: (sigma: number) => number;
  tree?: Omit<BrownianTreeOptions, 'tol' | 'poolSize'>;
}

/**
 * k-diffusion's BrownianTreeNoiseSampler(x, sigma_min, sigma_max, seed, transform): called with
 * (sigma, sigmaNext), returns tree(t0, t1) / sqrt(|t1 - t0|) for t = transform(sigma), standard
 * normal per element and consistent across any partition of the sigma range. Sigmas are taken
 * as float32, as the references hold them.
 */
export function brownianTreeNoise(options: BrownianNoiseOptions): NoiseSource {
  const transform = options.transform ?? ((sigma: number) => sigma);
  const batch = options.shape[0];
  const numel = options.shape.reduce((a, b) => a * b, 1);
  const batched = Array.isArray(options.seed);
  const seeds: readonly (number | bigint)[] = Array.isArray(options.seed) ? options.seed : [options.seed];
  if (batched && seeds.length !== batch) {
    throw new RangeError(`${seeds.length} seeds for a batch of ${batch}`);
  }
  const [t0, t1, sign] = sorted(transform(f32(options.sigmaMin)), transform(f32(options.sigmaMax)));
  const perTree = batched ? numel / batch : numel;
  const trees = seeds.map((seed) => new BrownianTree(t0, t1, perTree, seed, options.tree));

  return (sigma?: number, sigmaNext?: number) => {
    if (sigma === undefined || sigmaNext === undefined) {
      throw new Error('a Brownian-tree noise source needs the sigma interval of each draw');
    }
    const ta = transform(f32(sigma));
    const tb = transform(f32(sigmaNext));
    const [lo, hi, querySign] = sorted(ta, tb);
    const scale = f32(Math.sqrt(Math.abs(f32(tb - ta))));
    const direction = sign * querySign;
    const out = new Float32Array(numel);
    trees.forEach((tree, i) => {
      const w = tree.increment(lo, hi);
      const offset = i * perTree;
      for (let k = 0; k < perTree; k++) out[offset + k] = f32((direction * w[k]) / scale);
    });
    return out;
  };
}

/** k-diffusion's `sigmas[sigmas > 0].min(), sigmas.max()`: the range the samplers build the tree on. */
export function brownianSigmaRange(sigmas: ArrayLike<number>): { sigmaMin: number; sigmaMax: number } {
  let sigmaMin = Infinity;
  let sigmaMax = -Infinity;
  for (let i = 0; i < sigmas.length; i++) {
    if (sigmas[i] > 0) sigmaMin = Math.min(sigmaMin, sigmas[i]);
    sigmaMax = Math.max(sigmaMax, sigmas[i]);
  }
  return { sigmaMin, sigmaMax };
}

/** BatchedBrownianTree.sort: the pair ascending and -1 if it was descending. */
function sorted(a: number, b: number): [number, number, 1 | -1] {
  return a < b ? [a, b, 1] : [b, a, -1];
}
