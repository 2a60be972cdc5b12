import { randomInt } from 'node:crypto';

const MIN_SEED = -(2n ** 63n);
const MAX_SEED = 2n ** 64n - 1n;

/**
 * A seed as the unsigned 64-bit integer torch's manual_seed stores: anything in
 * [-2^63, 2^64 - 1], negative seeds taken in two's complement as torch does. Numbers must be safe
 * integers (pass a bigint beyond 2^53).
 */
export function toUint64(seed: number | bigint): bigint {
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
    throw new RangeError(`seed must be a safe integer or a bigint, got ${seed}`);
  }
  const big = BigInt(seed);
  if (big < MIN_SEED || big > MAX_SEED) throw new RangeError(`seed ${big} is outside [-2^63, 2^64 - 1]`);
  return BigInt.asUintN(64, big);
}

/**
 * A seed for when the user gives none, drawn as A1111's get_fixed_seed does:
 * random.randrange(4294967294), i.e. uniform in [0, 2^32 - 3].
 */
export function randomSeed(): number {
  return randomInt(0, 4294967294);
}
