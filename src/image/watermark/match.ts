// Whether decoded bits carry an expected payload. The method is lossy even on an untouched marked image (a
// lowered coefficient can stop being its block's largest), so exact equality is the wrong test; the question
// is whether the agreement could be chance. An unmarked image's bits behave like coin flips, so the chance of
// k or more agreements out of n is a binomial tail, computed exactly.

import type { Bit } from './payload.js';

/**
 * A match needs agreement that an unmarked image reaches with probability below this. For the 48-bit SDXL
 * message that means at least 36 bits: Stability's own detector calls 36 and more "very likely watermarked"
 * (no false positive among 10,000 real images in their test).
 */
export const CHANCE_LIMIT = 1 / 1000;

export interface PayloadMatch {
  matchedBits: number;
  totalBits: number;
  /** Upper bound of the probability that an unmarked image agrees this well (over all `tries` readings). */
  chance: number;
  matches: boolean;
}

function binomialTail(n: number, k: number): bigint {
  let term = 1n; // C(n, 0)
  let tail = k <= 0 ? 1n : 0n;
  for (let i = 1; i <= n; i++) {
    term = (term * BigInt(n - i + 1)) / BigInt(i);
    if (i >= k) tail += term;
  }
  return tail;
}

/**
 * Compare decoded with expected bits. `tries` is how many readings were searched for this one (each channel
 * order is a reading): the chance is multiplied by it, so trying more readings cannot manufacture a match.
 */
export function comparePayload(decoded: readonly Bit[], expected: readonly Bit[], tries = 1): PayloadMatch {
  if (decoded.length !== expected.length) throw new RangeError(`decoded ${decoded.length} bits, expected ${expected.length}`);
  const n = expected.length;
  const matchedBits = expected.reduce<number>((sum, b, i) => sum + (decoded[i] === b ? 1 : 0), 0);
  const tail = binomialTail(n, matchedBits) * BigInt(tries);
  const total = 1n << BigInt(n);
  // tail / 2^n as a double; exact enough for reporting, while the verdict below compares integers
  const scale = 10n ** 18n;
  const chance = Math.min(1, Number((tail * scale) / total) / 1e18);
  return { matchedBits, totalBits: n, chance, matches: tail * BigInt(Math.round(1 / CHANCE_LIMIT)) < total };
}
