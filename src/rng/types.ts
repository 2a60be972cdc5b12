/**
 * A seeded, stateful source of standard normal float32 values. Each call continues the stream,
 * exactly as successive torch.randn(..., generator=g) calls do.
 */
export interface Rng {
  /** n standard normal values, as one torch.randn call of a tensor with n elements would give. */
  randn(n: number): Float32Array;
}

export type RngKind = 'cpu' | 'philox';
