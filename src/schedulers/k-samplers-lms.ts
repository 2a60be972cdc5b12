/**
 * Coefficients of the linear multistep method over a sigma schedule (k-diffusion
 * linear_multistep_coeff). k-diffusion integrates each Lagrange basis polynomial with
 * scipy.integrate.quad; the integrand is a polynomial of degree order - 1 <= 3, so 4-point
 * Gauss-Legendre quadrature (exact up to degree 7) gives the same integral to rounding.
 */

const GAUSS_NODES = [-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526];
const GAUSS_WEIGHTS = [0.34785484513745385, 0.6521451548625461, 0.6521451548625461, 0.34785484513745385];

/** Integral over [a, b] of a polynomial of degree <= 7. */
function integratePolynomial(fn: (tau: number) => number, a: number, b: number): number {
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let sum = 0;
  for (let k = 0; k < GAUSS_NODES.length; k++) sum += GAUSS_WEIGHTS[k] * fn(mid + half * GAUSS_NODES[k]);
  return sum * half;
}

/**
 * Weights for the derivatives at steps i, i-1, ..., i-order+1 (newest first) of the step from
 * sigmas[i] to sigmas[i + 1].
 */
export function lmsCoefficients(sigmas: Float64Array, i: number, order: number): number[] {
  if (order - 1 > i) throw new Error(`LMS order ${order} too high for step ${i}`);
  const coeffs: number[] = [];
  for (let j = 0; j < order; j++) {
    const basis = (tau: number): number => {
      let prod = 1;
      for (let k = 0; k < order; k++) {
        if (k !== j) prod *= (tau - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k]);
      }
      return prod;
    };
    coeffs.push(integratePolynomial(basis, sigmas[i], sigmas[i + 1]));
  }
  return coeffs;
}
