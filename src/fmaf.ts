/**
 * Float32 fused multiply-add: a*b + c rounded once to float32, as the x86 vfmadd*ps instructions
 * compute it. a, b and c must be float32 values.
 *
 * The product of two float32 values is exact in a double, so only the sum can be rounded twice
 * (to double, then to float). That changes the answer only when the double sum lands exactly
 * halfway between two floats while the exact sum does not; then the sign of the sum's rounding
 * error picks the side.
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const f = Math.fround(s);
  if (f === s) return f;
  const d = s - f;
  const across = f + 2 * d;
  if (Math.fround(across) !== across) return f;
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  if (err === 0) return f;
  return err > 0 === d > 0 ? across : f;
}
