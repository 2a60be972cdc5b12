/** A two-processor /proc/cpuinfo listing these flags (after fpu and sse2), as src/onnx/cpu-features.ts reads it. */
export function cpuinfoWith(flags: string): string {
  return `processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu sse2 ${flags}\n\nprocessor\t: 1\n`;
}
