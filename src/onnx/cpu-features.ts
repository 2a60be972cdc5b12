import { readFileSync } from 'node:fs';

/**
 * Whether this CPU runs --quantize int8 well. ONNX Runtime's x86 int8 kernels multiply uint8
 * activations by int8 weights; with VNNI (AVX-512 VNNI or AVX-VNNI) the products accumulate in
 * 32 bits, while plain AVX2 adds pairs into 16 bits with saturation, which ONNX Runtime's
 * quantization guide warns can cost accuracy. Read from /proc/cpuinfo (Linux); elsewhere unknown.
 */
export interface Int8Support {
  vnni: boolean | undefined;
  note: string;
}

export function int8Support(cpuinfo: string | null = readCpuinfo(), arch: string = process.arch): Int8Support {
  if (arch !== 'x64') return { vnni: undefined, note: `${arch}: ONNX Runtime's int8 kernels for this architecture; compare quality with the same seed` };
  if (cpuinfo === null) return { vnni: undefined, note: 'CPU features unknown on this system; compare --quantize int8 with the same seed' };
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  if (flags.has('avx512_vnni') || flags.has('avx_vnni')) return { vnni: true, note: 'VNNI present: int8 runs at full precision and speed' };
  if (flags.has('avx2')) return { vnni: false, note: 'AVX2 without VNNI: int8 products can saturate (ONNX Runtime\'s warning); compare quality with the same seed' };
  return { vnni: false, note: 'no AVX2: int8 runs on slower kernels; --quantize int8 may not pay off' };
}

function readCpuinfo(): string | null {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
}
