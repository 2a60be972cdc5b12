import type { MatMul } from './delta-matmul.js';

/**
 * The weight change one module of a LoRA/LyCORIS file makes, as torch's [out, in, (kh, kw)]
 * values, from the tensors the file holds for it — the definitions A1111's Lora extension
 * (network_lora/hada/lokr/full.py) and LyCORIS compute, and diffusers' fuse_lora for plain LoRA:
 * - LoRA / LoCon: up @ down (a 1x1 `up` after a kxk `down` for convolutions), or with a CP
 *   `lora_mid` core: Σ mid[n,m,k,l] up[i,n] down[m,j];
 * - LoHa: (w1a @ w1b) ⊙ (w2a @ w2b), each factor optionally a CP core `hada_t1`/`hada_t2`;
 * - LoKr: w1 ⊗ w2 (Kronecker), each full or a product `w_a @ w_b` (w2 optionally CP with `lokr_t2`);
 * - full: `diff` itself.
 * The scale is `scale` when the file has one, else alpha / rank (rank: the inner dimension of the
 * factors) when it has both, else 1 — A1111's calc_scale.
 */

export interface StoredTensor {
  shape: number[];
  values: Float32Array;
}

export type ModuleParts = ReadonlyMap<string, StoredTensor>;

export interface ModuleDelta {
  /** Row-major, with `shape`'s element count (before the target's reshape). */
  values: Float32Array;
  shape: number[];
  /** alpha / rank, `scale`, or 1; the multiplier of the tag comes on top. */
  scale: number;
}

export class UnsupportedModuleError extends Error {}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The first dimension by the rest, as torch's reshape(shape[0], -1). */
function rows(t: StoredTensor): [number, number] {
  return [t.shape[0]!, numel(t.shape) / t.shape[0]!];
}

function need(parts: ModuleParts, name: string): StoredTensor {
  const t = parts.get(name);
  if (!t) throw new UnsupportedModuleError(`has no ${name}`);
  return t;
}

/**
 * A CP (Tucker) core with its two factor matrices: Σ_ij t[i,j,k,l] wa[i,r] wb[j,c] → [r, c, kh, kw]
 * (LyCORIS' make_weight_cp: wa [i, r], wb [j, c]), as two products: per kernel position t[:,:,kl] @ wb,
 * then waᵀ @ that.
 */
async function cpRebuild(t: StoredTensor, wa: StoredTensor, wb: StoredTensor, matmul: MatMul): Promise<StoredTensor> {
  const [I, J, K, L] = t.shape as [number, number, number, number];
  const R = wa.shape[1]!;
  const C = wb.shape[1]!;
  const kl = K * L;
  // inner[i, c, q] = Σ_j t[i, j, q] wb[j, c], computed per q from t's [i, j] slice.
  const inner = new Float32Array(I * C * kl);
  for (let q = 0; q < kl; q++) {
    const slice = Float32Array.from({ length: I * J }, (_, ij) => t.values[ij * kl + q]!);
    const part = await matmul(slice, wb.values, I, J, C);
    for (let i = 0; i < I; i++) for (let c = 0; c < C; c++) inner[(i * C + c) * kl + q] = part[i * C + c]!;
  }
  const values = await matmul(transpose2d(wa).values, inner, R, I, C * kl);
  return { shape: [R, C, K, L], values };
}

async function product(a: StoredTensor, b: StoredTensor, matmul: MatMul): Promise<StoredTensor> {
  const [m, k] = rows(a);
  const [, n] = rows(b);
  return { shape: [m, n], values: await matmul(a.values, b.values, m, k, n) };
}

function scaleOf(parts: ModuleParts, rank: number | undefined): number {
  const scale = parts.get('scale');
  if (scale) return scale.values[0]!;
  const alpha = parts.get('alpha');
  return alpha && rank !== undefined ? alpha.values[0]! / rank : 1;
}

async function lora(parts: ModuleParts, dynDim: number | undefined, matmul: MatMul): Promise<ModuleDelta> {
  const up = need(parts, 'lora_up.weight');
  const down = need(parts, 'lora_down.weight');
  const mid = parts.get('lora_mid.weight');
  const rank = down.shape[0]!;
  if (mid) {
    // up [out, n] and down [m, in] (1x1 convolutions), mid [n, m, kh, kw]: the CP rebuild with wa = upᵀ, wb = down.
    const rebuilt = await cpRebuild(mid, transpose2d(up), { shape: rows(down), values: down.values }, matmul);
    return { values: rebuilt.values, shape: rebuilt.shape, scale: scaleOf(parts, rank) };
  }
  let [out, r] = rows(up);
  let [, inner] = rows(down);
  let upValues = up.values;
  let downValues = down.values;
  if (dynDim !== undefined && dynDim < r) {
    // DyLoRA: only the first dyn ranks (A1111's `dyn`).
    upValues = Float32Array.from({ length: out * dynDim }, (_, i) => up.values[Math.floor(i / dynDim) * r + (i % dynDim)]!);
    downValues = down.values.subarray(0, dynDim * inner);
    r = dynDim;
  }
  const shape = down.shape.length === 4 ? [out, down.shape[1]!, down.shape[2]!, down.shape[3]!] : [out, inner];
  return { values: await matmul(upValues, downValues, out, r, inner), shape, scale: scaleOf(parts, rank) };
}

function transpose2d(t: StoredTensor): StoredTensor {
  const [m, n] = rows(t);
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = t.values[i * n + j]!;
  return { shape: [n, m], values: out };
}

async function hada(parts: ModuleParts, matmul: MatMul): Promise<ModuleDelta> {
  const w1a = need(parts, 'hada_w1_a');
  const w1b = need(parts, 'hada_w1_b');
  const w2a = need(parts, 'hada_w2_a');
  const w2b = need(parts, 'hada_w2_b');
  const t1 = parts.get('hada_t1');
  const t2 = parts.get('hada_t2');
  const one = t1 ? await cpRebuild(t1, w1a, w1b, matmul) : await product(w1a, w1b, matmul);
  const two = t2 ? await cpRebuild(t2, w2a, w2b, matmul) : await product(w2a, w2b, matmul);
  if (one.values.length !== two.values.length) throw new UnsupportedModuleError('has LoHa factors of different sizes');
  const values = one.values.map((v, i) => v * two.values[i]!);
  return { values, shape: one.shape, scale: scaleOf(parts, w1b.shape[0]) };
}

/** torch.kron of [a, b] with [c, d] (or [c, d, kh, kw], w1 broadcast over the kernel): [a*c, b*d, ...]. */
function kron(w1: StoredTensor, w2: StoredTensor): StoredTensor {
  const [a, b] = w1.shape as [number, number];
  const [c, d] = w2.shape as [number, number];
  const kl = numel(w2.shape.slice(2));
  const out = new Float32Array(a * c * b * d * kl);
  const cols = b * d;
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      const f = w1.values[i * b + j]!;
      for (let p = 0; p < c; p++) {
        for (let q = 0; q < d; q++) {
          const src = (p * d + q) * kl;
          const dst = ((i * c + p) * cols + (j * d + q)) * kl;
          for (let s = 0; s < kl; s++) out[dst + s] = f * w2.values[src + s]!;
        }
      }
    }
  }
  return { shape: [a * c, b * d, ...w2.shape.slice(2)], values: out };
}

async function lokr(parts: ModuleParts, matmul: MatMul): Promise<ModuleDelta> {
  const w1a = parts.get('lokr_w1_a');
  const w1b = parts.get('lokr_w1_b');
  const w2a = parts.get('lokr_w2_a');
  const w2b = parts.get('lokr_w2_b');
  const t2 = parts.get('lokr_t2');
  const w1 = parts.get('lokr_w1') ?? (w1a && w1b ? await product(w1a, w1b, matmul) : undefined);
  const w2 = parts.get('lokr_w2') ?? (w2a && w2b ? (t2 ? await cpRebuild(t2, w2a, w2b, matmul) : await product(w2a, w2b, matmul)) : undefined);
  if (!w1 || !w2) throw new UnsupportedModuleError('has an incomplete LoKr pair (lokr_w1 or lokr_w1_a/b, lokr_w2 or lokr_w2_a/b)');
  // A1111: the rank is w2_b's when w2 is factored, else w1_b's, else there is none (scale 1).
  const rank = w2b?.shape[0] ?? w1b?.shape[0];
  const k = kron(w1, w2);
  return { values: k.values, shape: k.shape, scale: scaleOf(parts, rank) };
}

export type DeltaKind = 'lora' | 'loha' | 'lokr' | 'full';

/** Which kind of network a module's parts are (by their names alone), or undefined for kinds not merged (IA3, OFT, GLoRA, ...). */
export function deltaKind(parts: ReadonlyMap<string, unknown>): DeltaKind | undefined {
  if (parts.has('lora_up.weight') && parts.has('lora_down.weight')) return 'lora';
  if (['hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b'].every((k) => parts.has(k))) return 'loha';
  const has1 = parts.has('lokr_w1') || (parts.has('lokr_w1_a') && parts.has('lokr_w1_b'));
  const has2 = parts.has('lokr_w2') || (parts.has('lokr_w2_a') && parts.has('lokr_w2_b'));
  if (has1 && has2) return 'lokr';
  if (parts.has('diff')) return 'full';
  return undefined;
}

/** The module's delta (its products on `matmul`); UnsupportedModuleError for parts of a kind not merged. */
export async function moduleDelta(parts: ModuleParts, matmul: MatMul, dynDim?: number): Promise<ModuleDelta> {
  switch (deltaKind(parts)) {
    case 'lora':
      return lora(parts, dynDim, matmul);
    case 'loha':
      return hada(parts, matmul);
    case 'lokr':
      return lokr(parts, matmul);
    case 'full': {
      const diff = need(parts, 'diff');
      return { values: diff.values, shape: diff.shape, scale: scaleOf(parts, undefined) };
    }
    default:
      throw new UnsupportedModuleError(`holds ${[...parts.keys()].join(', ')}, a kind of network diffuse does not merge`);
  }
}
