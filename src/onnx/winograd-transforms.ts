/**
 * The fixed matrices of Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2015, "Fast
 * Algorithms for Convolutional Neural Networks"): a 2x2 output tile of a 3x3 correlation is
 * Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for the 4x4 input tile d, so a layer's 36 multiplies per tile and
 * channel pair become 16. Here they are laid out as the tensors the rewritten graph reads.
 * The 16 transformed positions are numbered k = 4a + b for row a and column b of the 4x4 tile.
 */

const BT = [
  [1, 0, -1, 0],
  [0, 1, 1, 0],
  [0, -1, 1, 0],
  [0, 1, 0, -1],
] as const;

const G = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, -0.5, 0.5],
  [0, 0, 1],
] as const;

const AT = [
  [1, 1, 1, 0],
  [0, 1, -1, -1],
] as const;

export const TILE_POSITIONS = 16;

/**
 * The input transform as a depthwise Conv weight [16C, 1, 4, 4]: output channel 16c + k holds the
 * 4x4 kernel Bᵀ[a,i]·Bᵀ[b,j], whose correlation with a tile d is (Bᵀ d B)[a,b].
 */
export function inputTransformKernels(channels: number): Float32Array {
  const one = new Float32Array(TILE_POSITIONS * 16);
  for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) one[(a * 4 + b) * 16 + i * 4 + j] = BT[a]![i]! * BT[b]![j]!;
  const all = new Float32Array(channels * one.length);
  for (let c = 0; c < channels; c++) all.set(one, c * one.length);
  return all;
}

/** The output transform as a [4, 16] matrix: row 2r + s, column 4a + b holds Aᵀ[r,a]·Aᵀ[s,b]. */
export function outputTransformMatrix(): Float32Array {
  const m = new Float32Array(4 * TILE_POSITIONS);
  for (let r = 0; r < 2; r++) for (let s = 0; s < 2; s++) for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) m[(r * 2 + s) * TILE_POSITIONS + a * 4 + b] = AT[r]![a]! * AT[s]![b]!;
  return m;
}

/**
 * U = G w Gᵀ for every (output, input) channel pair of a [O, C, 3, 3] weight, as [16, O, C] so
 * position k is one O x C matrix for a batched MatMul. Accumulated in float64, stored float32:
 * the transformed weight is then the rounding of the exact one, as direct convolution's is w.
 */
export function transformWeights(weight: Float32Array, outChannels: number, inChannels: number): Float32Array {
  const pairs = outChannels * inChannels;
  if (weight.length !== pairs * 9) throw new Error(`a 3x3 weight of ${outChannels}x${inChannels} channels has ${pairs * 9} values, not ${weight.length}`);
  const u = new Float32Array(TILE_POSITIONS * pairs);
  const t = new Float64Array(12);
  for (let p = 0; p < pairs; p++) {
    const w = p * 9;
    // t = G w: [4, 3].
    for (let a = 0; a < 4; a++) {
      for (let j = 0; j < 3; j++) t[a * 3 + j] = G[a]![0]! * weight[w + j]! + G[a]![1]! * weight[w + 3 + j]! + G[a]![2]! * weight[w + 6 + j]!;
    }
    // U = t Gᵀ: [4, 4], scattered to the 16 planes.
    for (let a = 0; a < 4; a++) {
      for (let b = 0; b < 4; b++) u[(a * 4 + b) * pairs + p] = t[a * 3]! * G[b]![0]! + t[a * 3 + 1]! * G[b]![1]! + t[a * 3 + 2]! * G[b]![2]!;
    }
  }
  return u;
}
