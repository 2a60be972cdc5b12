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

function valueInfo(name: string): number[] {
  const dim = field(1, intField(1, 1));
  const shape = field(2, field(1, dim));
  const tensorType = field(1, [...intField(1, 1), ...shape]);
  return [...field(1, name), ...field(2, tensorType)];
}

export function identityModel(): Uint8Array {
  const node = [...field(1, 'x'), ...field(2, 'y'), ...field(4, 'Identity')];
  const graph = [...field(1, node), ...field(2, 'probe'), ...field(11, valueInfo('x')), ...field(12, valueInfo('y'))];
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
