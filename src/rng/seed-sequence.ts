/**
 * numpy.random.SeedSequence (numpy/random/bit_generator.pyx, numpy >= 1.19), word for word:
 * torchsde derives every seed of its Brownian tree from one, keyed on the tree node.
 */

/** An integer entropy source as numpy accepts it: a non-negative int, or a list of them. */
export type Entropy = number | bigint | readonly (number | bigint)[];

export interface SeedSequenceOptions {
  /** Position in a spawn tree; extra entropy words after the run entropy. Default none. */
  spawnKey?: readonly (number | bigint)[];
  /** Size of the entropy pool in 32-bit words, at least 4 (numpy's default). */
  poolSize?: number;
}

const DEFAULT_POOL_SIZE = 4;
const INIT_A = 0x43b0d7e5;
const MULT_A = 0x931e8875;
const INIT_B = 0x8b51f9dd;
const MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const XSHIFT = 16;

/** A non-negative integer as numpy splits it: 32-bit words, lowest first; 0 is one word. */
function integerWords(value: number | bigint): number[] {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`entropy must be a safe integer or a bigint, got ${value}`);
  }
  let n = BigInt(value);
  if (n < 0n) throw new RangeError('expected non-negative integer');
  if (n === 0n) return [0];
  const words: number[] = [];
  for (; n > 0n; n >>= 32n) words.push(Number(n & 0xffffffffn));
  return words;
}

function entropyWords(entropy: Entropy): number[] {
  return typeof entropy === 'number' || typeof entropy === 'bigint' ? integerWords(entropy) : entropy.flatMap(integerWords);
}

export class SeedSequence {
  /** The mixed entropy pool, poolSize words. */
  readonly pool: Uint32Array;

  constructor(entropy: Entropy, options: SeedSequenceOptions = {}) {
    const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
    if (!Number.isInteger(poolSize) || poolSize < DEFAULT_POOL_SIZE) {
      throw new RangeError(`The size of the entropy pool should be at least ${DEFAULT_POOL_SIZE}`);
    }
    const run = entropyWords(entropy);
    const spawn = (options.spawnKey ?? []).flatMap(integerWords);
    // numpy >= 1.19 pads the run entropy when there is a spawn key, so that a spawned child
    // never collides with a parent of longer entropy (gh-16539).
    if (spawn.length > 0) while (run.length < poolSize) run.push(0);
    this.pool = mixEntropy(poolSize, [...run, ...spawn]);
  }

  /** nWords uint32 words of seed material (generate_state(n, dtype=np.uint32)). */
  generateState(nWords: number): Uint32Array {
    const out = new Uint32Array(nWords);
    let hashConst = INIT_B;
    for (let i = 0; i < nWords; i++) {
      let value = (this.pool[i % this.pool.length] ^ hashConst) >>> 0;
      hashConst = Math.imul(hashConst, MULT_B) >>> 0;
      value = Math.imul(value, hashConst) >>> 0;
      out[i] = (value ^ (value >>> XSHIFT)) >>> 0;
    }
    return out;
  }
}

function mixEntropy(poolSize: number, entropy: readonly number[]): Uint32Array {
  const pool = new Uint32Array(poolSize);
  let hashConst = INIT_A;
  const hashmix = (input: number): number => {
    let value = (input ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    value = Math.imul(value, hashConst) >>> 0;
    return (value ^ (value >>> XSHIFT)) >>> 0;
  };
  const mix = (x: number, y: number): number => {
    const result = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
    return (result ^ (result >>> XSHIFT)) >>> 0;
  };
  for (let i = 0; i < poolSize; i++) pool[i] = hashmix(i < entropy.length ? entropy[i] : 0);
  // Mix all words together so late words affect earlier ones.
  for (let src = 0; src < poolSize; src++) {
    for (let dst = 0; dst < poolSize; dst++) if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  }
  // Entropy beyond the pool is folded into every pool word.
  for (let src = poolSize; src < entropy.length; src++) {
    for (let dst = 0; dst < poolSize; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  return pool;
}
