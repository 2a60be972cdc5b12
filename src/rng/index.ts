import { PhiloxRng } from './philox.js';
import { TorchCpuRng, type TorchCpuKernel } from './torch-cpu.js';
import type { Rng, RngKind } from './types.js';

export type { Rng, RngKind } from './types.js';
export type { TorchCpuKernel } from './torch-cpu.js';
export { randomSeed } from './seed.js';

export interface RngOptions {
  /** For kind 'cpu': which build of torch's CPU kernel to reproduce (default 'avx2'). */
  cpuKernel?: TorchCpuKernel;
}

/** A fresh generator of the given kind, as if just seeded with seed. */
export function createRng(kind: RngKind, seed: number | bigint, options: RngOptions = {}): Rng {
  switch (kind) {
    case 'cpu':
      return new TorchCpuRng(seed, options.cpuKernel);
    case 'philox':
      return new PhiloxRng(seed);
  }
}
