import { cpus } from 'node:os';
import { cpuFlags, int8Support, readCpuinfo } from '../src/onnx/cpu-features.js';

/**
 * What a results file needs to say about the CPU for its numbers to be read right: the model
 * name alone ("AMD EPYC") hides the family and the instruction sets that decide int8's kernels.
 */
export interface CpuDescription {
  model: string;
  family?: string;
  modelNumber?: string;
  /** The instruction sets ONNX Runtime's kernels choose between. */
  features: string[];
  int8Format: string;
}

const FEATURES = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512_vnni', 'avx_vnni', 'avx512_bf16', 'amx_int8'];

export function describeCpu(): CpuDescription {
  const info = readCpuinfo() ?? ''; // empty off Linux: the model name is all there is
  const field = (name: string): string | undefined => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
  const flags = cpuFlags(info);
  const family = field('cpu family');
  const modelNumber = field('model');
  return {
    model: cpus()[0]?.model ?? 'unknown',
    ...(family ? { family } : {}),
    ...(modelNumber ? { modelNumber } : {}),
    features: FEATURES.filter((f) => flags.has(f)),
    int8Format: int8Support(info || null).format,
  };
}

export function cpuLine(cpu: CpuDescription): string {
  const id = cpu.family ? ` (family ${cpu.family}, model ${cpu.modelNumber ?? '?'})` : '';
  return `${cpu.model}${id}; ${cpu.features.join(' ') || 'no AVX2'}; int8 format ${cpu.int8Format}`;
}

/**
 * A results file's name part for the CPU: vendor word, family and model number, and the class of
 * instruction set that decides the kernels ("epyc-f25m17-avx512vnni", "epyc-f25m1-avx2", "xeon-f6m167-amx"), so the
 * files of each CPU class sort together.
 */
export function cpuTag(cpu: CpuDescription): string {
  const word = /epyc|ryzen|xeon|core|graviton|ampere|apple/i.exec(cpu.model)?.[0]?.toLowerCase() ?? 'cpu';
  const id = cpu.family ? `-f${cpu.family}m${cpu.modelNumber ?? 'x'}` : '';
  const has = (f: string): boolean => cpu.features.includes(f);
  // AMX's int8 tiles are a kernel class of their own in ONNX Runtime (MLAS picks them over VNNI).
  const isa = has('amx_int8') ? 'amx' : has('avx512_vnni') ? 'avx512vnni' : has('avx_vnni') ? 'avxvnni' : has('avx512f') ? 'avx512' : has('avx2') ? 'avx2' : 'noavx2';
  return `${word}${id}-${isa}`;
}
