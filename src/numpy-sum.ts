// numpy's sum of a float64 array (np.add.reduce: from 0, pairwise): under 8 values one by one; up to 128 in eight
// accumulators added as ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)), then the tail; past that the halves
// (the first a multiple of 8) summed so and added. A floor file every room may use.

export function numpySum(values: ArrayLike<number>, start = 0, end = values.length): number {
  const n = end - start;
  if (n < 8) {
    let sum = 0;
    for (let i = start; i < end; i++) sum += values[i]!;
    return sum;
  }
  if (n <= 128) {
    const r = Array.from({ length: 8 }, (_, j) => values[start + j]!);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += values[start + i + j]!;
    let sum = r[0]! + r[1]! + (r[2]! + r[3]!) + (r[4]! + r[5]! + (r[6]! + r[7]!));
    for (; i < n; i++) sum += values[start + i]!;
    return sum;
  }
  const half = Math.trunc(n / 2) - (Math.trunc(n / 2) % 8);
  return numpySum(values, start, start + half) + numpySum(values, start + half, end);
}
