import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ort } from './runtime.js';
import { describeCause } from '../errors.js';
import type { Device } from './session.js';

/**
 * Whether an execution provider really works here is only known by opening a session on it,
 * so `diffuse doctor` opens a one-node Identity graph, built in memory (a few protobuf bytes),
 * on each provider.
 */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function field(num: number, payload: number[] | string): number[] {
  const bytes = typeof payload === 'string' ? [...Buffer.from(payload, 'utf8')] : payload;
  return [...varint((num << 3) | 2), ...varint(bytes.length), ...bytes];
}

function intField(num: number, value: number): number[] {
  return [...varint(num << 3), ...varint(value)];
}

/** A tensor of ONNX element type `elemType`: shape [1], or any shape when `shaped` is false. */
function valueInfo(name: string, elemType: number, shaped: boolean): number[] {
  const dim = field(1, intField(1, 1));
  const shape = shaped ? field(2, field(1, dim)) : [];
  const tensorType = field(1, [...intField(1, elemType), ...shape]);
  return [...field(1, name), ...field(2, tensorType)];
}

/** y = Identity(x), float32 [1] by default (the probe); any-shape ones upload tensors (resident-inputs.ts). */
export function identityModel(elemType = 1, shaped = true): Uint8Array {
  const node = [...field(1, 'x'), ...field(2, 'y'), ...field(4, 'Identity')];
  const graph = [...field(1, node), ...field(2, 'probe'), ...field(11, valueInfo('x', elemType, shaped)), ...field(12, valueInfo('y', elemType, shaped))];
  const opset = [...field(1, ''), ...intField(2, 13)];
  return Uint8Array.from([...intField(1, 7), ...field(7, graph), ...field(8, opset)]);
}

export interface ProviderStatus {
  provider: Exclude<Device, 'auto'>;
  works: boolean;
  detail: string;
}

export async function probeProvider(provider: Exclude<Device, 'auto'>): Promise<ProviderStatus> {
  try {
    const session = await ort.InferenceSession.create(identityModel(), { executionProviders: [provider], logSeverityLevel: 4 });
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1.5), [1]) });
    await session.release();
    const ok = (out.y?.data as Float32Array | undefined)?.[0] === 1.5;
    return { provider, works: ok, detail: ok ? 'opened a session and ran a graph' : 'ran, but returned a wrong value' };
  } catch (err) {
    return { provider, works: false, detail: describeCause(err) };
  }
}

const PROBE_TIMEOUT_MS = 60_000;

/**
 * probeProvider in a child process: GPU runtimes write straight to the process's stderr (Dawn's
 * Vulkan loader, CUDA) and a broken driver can crash the process, neither of which should reach
 * `diffuse doctor`'s output or end it.
 */
export function probeProviderIsolated(provider: Exclude<Device, 'auto'>): Promise<ProviderStatus> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./probe-child.js', import.meta.url)), provider], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout) as ProviderStatus);
      } catch {
        const last = stderr.trim().split('\n').pop() ?? '';
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        resolve({ provider, works: false, detail: `the probe process ${how}${last ? `: ${last.slice(0, 200)}` : ''}` });
      }
    });
  });
}
