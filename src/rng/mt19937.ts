const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/**
 * The 32-bit Mersenne Twister exactly as torch's CPU generator runs it (at::mt19937): the state is
 * seeded with the low 32 bits of the seed by the reference init_genrand recurrence, and the first
 * draw regenerates the whole state.
 */
export class Mt19937 {
  private readonly state = new Uint32Array(N);
  private next = N;

  constructor(seed32: number) {
    const s = this.state;
    s[0] = seed32 >>> 0;
    for (let j = 1; j < N; j++) {
      const prev = s[j - 1]!;
      s[j] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + j) >>> 0;
    }
  }

  /** The whole state (624 words and the read position), to save a run and resume it. */
  snapshot(): { words: number[]; next: number } {
    return { words: Array.from(this.state), next: this.next };
  }

  restore(snapshot: { words: readonly number[]; next: number }): void {
    if (snapshot.words.length !== N || !(snapshot.next >= 0 && snapshot.next <= N)) throw new RangeError('not an mt19937 state');
    this.state.set(snapshot.words);
    this.next = snapshot.next;
  }

  /** The next 32-bit output, as an unsigned integer. */
  nextU32(): number {
    if (this.next >= N) this.twist();
    let y = this.state[this.next++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let k = 0; k < N; k++) {
      const y = (s[k]! & UPPER_MASK) | (s[(k + 1) % N]! & LOWER_MASK);
      s[k] = s[(k + M) % N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.next = 0;
  }
}
