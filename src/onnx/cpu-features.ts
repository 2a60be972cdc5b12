import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Int8Format } from './quantize-int8.js';

/**
 * How this CPU runs --quantize int8, and so which weight format the quantizer writes. ONNX
 * Runtime's x86 int8 kernels multiply uint8 activations by int8 weights; with VNNI (AVX-512 VNNI
 * or AVX-VNNI) the products accumulate in 32 bits, while AVX2 and AVX-512 without VNNI add pairs
 * into 16 bits with saturation, which ONNX Runtime's quantization guide warns about. Its two
 * remedies are uint8 weights (u8×u8 kernels widen before multiplying) and 7-bit "reduce range"
 * weights; u8u8 keeps the 8-bit grid, so it gives the numbers VNNI gives (measured: README).
 * ARM's int8 kernels widen too. Read from /proc/cpuinfo (Linux); elsewhere the safe format.
 */
export interface Int8Support {
  vnni: boolean | undefined;
  /** AMX's int8 tiles, which ONNX Runtime's u8s8 GEMMs use (and its symmetric convolution kernels do not). */
  amx?: boolean;
  /** AVX-512 without VNNI (false: AVX2 without VNNI), where int8 convolutions do not pay (int8Mode). */
  avx512?: boolean;
  /** The weight format that runs exactly here. */
  format: Int8Format;
  note: string;
}

export function int8Support(cpuinfo: string | null = readCpuinfo(), arch: string = process.arch): Int8Support {
  if (arch === 'arm64') return { vnni: undefined, format: 'u8s8', note: "arm64: ONNX Runtime's int8 kernels widen the products, int8 weights (u8s8) are exact" };
  if (arch !== 'x64') return { vnni: undefined, format: 'u8u8', note: `${arch}: uint8 weights (u8u8), exact on every kernel; compare quality with the same seed` };
  if (cpuinfo === null) return { vnni: undefined, format: 'u8u8', note: 'CPU features unknown on this system: uint8 weights (u8u8), exact on every x86 CPU' };
  const flags = cpuFlags(cpuinfo);
  // The expected gains are measured with `npm run bench` on SD 1.5 at 512x512 (README, Speed).
  if (flags.has('amx_int8')) {
    // MLAS runs its u8s8 GEMMs on AMX tiles here, and the quantizer routes wide convolutions through them (int8Storage; bench/results/*-amx).
    return { vnni: true, amx: true, format: 'u8s8', note: "VNNI and AMX present: int8 weights (u8s8), exact and fastest; measured on SD 1.5 at 512x512 with AMX (Xeon family 6 model 167): a step in 0.41x fp32's time (its wide convolutions on ONNX Runtime's GEMM path, which uses AMX)" };
  }
  if (flags.has('avx512_vnni') || flags.has('avx_vnni')) {
    return { vnni: true, format: 'u8s8', note: "VNNI present: int8 weights (u8s8), exact and fastest; measured on SD 1.5 at 512x512 with AVX-512 VNNI: a step in 0.4-0.5x fp32's time" };
  }
  if (flags.has('avx512f')) {
    return {
      vnni: false,
      avx512: true,
      format: 'u8u8',
      note: "AVX-512 without VNNI: uint8 weights (u8u8), since int8 weights' products would saturate in 16 bits here; --quantize int8 quantizes the UNet's MatMuls only here (as int8-matmul): int8 convolutions are no faster than float ones, so they stay float (with --conv's Winograd share); measured on SD 1.5 at 512x512: a step in 0.96x fp32's time, so it saves a little time and memory (5.0 against 5.6 GB) here; the VAE decoder stays float32, its int8 graph is slower here",
    };
  }
  if (flags.has('avx2')) {
    return {
      vnni: false,
      avx512: false,
      format: 'u8u8',
      note: "AVX2 without VNNI: uint8 weights (u8u8), since int8 weights' products would saturate in 16 bits here; measured on SD 1.5 at 512x512: a step in 0.80-0.84x fp32's time with --conv direct, 0.94x with the default --conv auto (--int8-format u8s7: faster still, same measured quality); the VAE decoder stays float32, its int8 graph is slower here",
    };
  }
  return { vnni: false, format: 'u8u8', note: 'no AVX2: uint8 weights (u8u8) on slower kernels; --quantize int8 may not pay off' };
}

/** The CPU's feature flags as /proc/cpuinfo lists them ("flags" on x86, "Features" on ARM). */
export function cpuFlags(cpuinfo: string | null): Set<string> {
  return new Set((/^(?:flags|Features)\s*:\s*(.*)$/m.exec(cpuinfo ?? '')?.[1] ?? '').split(/\s+/).filter(Boolean));
}

/**
 * The CPU as an optimised graph depends on it (optimized-cache.ts): its model name and its vector instruction sets.
 * The name alone is not enough: virtual machines show generic names ("Intel(R) Xeon(R) Processor") over different
 * instruction sets, and a graph optimised with AVX-512's 16-float NCHWc blocks gives wrong numbers, silently, on an
 * AVX2 CPU's 8-float kernels (seen: tiny-sd's UNet 1.8 of max off, run as the AVX2 class with tools/cpu-class).
 */
export function cpuIdentity(cpuinfo: string | null = readCpuinfo()): string {
  const vector = [...cpuFlags(cpuinfo)].filter((f) => /^(sse|avx|fma|f16c|amx|asimd|sve|i8mm|bf16|fphp)/.test(f)).sort();
  return `${process.arch}:${cpus()[0]?.model ?? ''}:${vector.join(' ')}`;
}

let cpuinfoRead: { text: string | null } | undefined;

/** /proc/cpuinfo (null off Linux), read once per process: every session opened asks for the CPU's identity. */
export function readCpuinfo(): string | null {
  if (cpuinfoRead) return cpuinfoRead.text;
  let text: string | null;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    text = null;
  }
  cpuinfoRead = { text };
  return text;
}
