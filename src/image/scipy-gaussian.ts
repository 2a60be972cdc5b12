// scipy.ndimage.gaussian_filter(plane, sigma) of a float64 plane with its defaults (mode 'reflect', truncate 4):
// the kernel exp(-0.5 / sigma² * x²) for x in -r..r (r = int(4 sigma + 0.5)) over its numpy sum (pairwise, eight
// accumulators); the rows' axis (0) filtered first, then the columns', each through NI_Correlate1D's symmetric loop
// (centre tap, then pairs of mirrored samples from the outermost in); samples past an edge mirrored about it
// (d c b a | a b c d | d c b a). Everything in float64.

import { numpySum } from '../numpy-sum.js';

export function gaussianKernel1d(sigma: number): Float64Array {
  const radius = Math.trunc(4 * sigma + 0.5);
  if (2 * radius + 1 > 127) throw new RangeError(`gaussianKernel1d: sigma ${sigma} is wider than this port's sum handles`);
  const phi = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp((-0.5 / (sigma * sigma)) * (i - radius) ** 2));
  const sum = numpySum(phi);
  return Float64Array.from(phi, (v) => v / sum);
}

/** mode 'reflect': index i of a line of n samples. */
function reflect(i: number, n: number): number {
  let k = i;
  const period = 2 * n;
  k = ((k % period) + period) % period;
  return k < n ? k : period - 1 - k;
}

function correlateLines(input: Float64Array, output: Float64Array, count: number, length: number, stride: number, lineStep: number, kernel: Float64Array): void {
  const radius = (kernel.length - 1) / 2;
  const line = new Float64Array(length + 2 * radius);
  for (let l = 0; l < count; l++) {
    const base = l * lineStep;
    for (let i = -radius; i < length + radius; i++) line[i + radius] = input[base + reflect(i, length) * stride]!;
    for (let i = 0; i < length; i++) {
      const c = i + radius;
      let v = line[c]! * kernel[radius]!;
      for (let j = -radius; j < 0; j++) v += (line[c + j]! + line[c - j]!) * kernel[radius + j]!;
      output[base + i * stride] = v;
    }
  }
}

export function gaussianFilter(plane: Float64Array, width: number, height: number, sigma: number): Float64Array {
  if (plane.length !== width * height) throw new RangeError(`gaussianFilter: ${plane.length} values for ${width}x${height}`);
  const kernel = gaussianKernel1d(sigma);
  const columns = new Float64Array(plane.length);
  correlateLines(plane, columns, width, height, width, 1, kernel);
  const out = new Float64Array(plane.length);
  correlateLines(columns, out, height, width, 1, width, kernel);
  return out;
}
