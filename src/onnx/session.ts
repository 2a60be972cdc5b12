import { existsSync } from 'node:fs';
import { ort } from './runtime.js';
import { cachedOptimizedModel, type OptimizedModelCache } from './optimized-cache.js';
import { ModelLoadError, UsageError, describeCause } from '../errors.js';
import { cudaInstallCommand } from './cuda-install.js';
import { hasGpuDevice } from './gpu-device.js';

export const DEVICES = ['auto', 'cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const;
export type Device = (typeof DEVICES)[number];

export interface SessionSettings {
  device: Device;
  /** Intra-op threads; ORT picks the number of physical cores when absent. */
  threads?: number;
  /**
   * A folder for ONNX Runtime's optimised graphs (CPU only): the first load saves the graph
   * after 'all' optimisations, later loads open it with optimisations off — seconds instead of
   * tens of seconds for a full-size UNet.
   */
  optimizedCache?: string;
  /**
   * A forward+backward graph (src/train/autodiff): 'extended' optimisation, no prepacking, no
   * arena. 'all' gives each forward Conv an NCHWc copy of its weight that the backward does not
   * share, and prepacking packs each weight once per consuming node, doubling the weights in
   * memory (bench/README.md); the arena's power-of-two growth adds gigabytes at 512².
   */
  gradient?: boolean;
}

/**
 * Which execution providers `auto` tries, best first, on this platform: CUDA, then the platform's
 * own (DirectML, CoreML), then WebGPU where a GPU is there to run it (not a software adapter:
 * gpu-device.ts), then the CPU.
 */
export function autoProviderOrder(platform: NodeJS.Platform = process.platform, gpu = hasGpuDevice(platform)): Exclude<Device, 'auto'>[] {
  const webgpu: Exclude<Device, 'auto'>[] = gpu ? ['webgpu'] : [];
  if (platform === 'win32') return ['cuda', 'dml', ...webgpu, 'cpu'];
  if (platform === 'darwin') return ['coreml', ...webgpu, 'cpu'];
  return ['cuda', ...webgpu, 'cpu'];
}

export interface OpenedSession {
  session: ort.InferenceSession;
  /** The provider the session actually runs on (auto resolved). */
  provider: Exclude<Device, 'auto'>;
  /** Opened from the optimised-graph cache. */
  fromCache?: boolean;
}

/**
 * Opens one graph on the requested provider. `auto` falls back towards the CPU when a
 * provider's library is not installed (onnxruntime-node has CUDA only once its install script
 * downloaded it: cuda-install.ts), so a GPU-less machine still works without flags.
 */
export async function openSession(path: string, settings: SessionSettings): Promise<OpenedSession> {
  if (!existsSync(path)) throw new ModelLoadError(`model file not found: ${path}`);
  const order = settings.device === 'auto' ? autoProviderOrder() : [settings.device];
  let lastError: unknown;
  for (const provider of order) {
    try {
      if (provider === 'cpu' && settings.optimizedCache && !settings.gradient) {
        return { ...(await openCached(path, settings.optimizedCache, settings.threads)), provider };
      }
      const session = await ort.InferenceSession.create(path, settings.gradient ? gradientSessionOptions(provider, settings.threads) : sessionOptions(provider, settings.threads));
      return { session, provider };
    } catch (err) {
      lastError = err;
      if (settings.device !== 'auto') break;
    }
  }
  const reason = describeCause(lastError);
  if (settings.device !== 'auto' && settings.device !== 'cpu' && /provider|backend|\.so|\.dll|not (found|available|supported)/i.test(reason)) {
    const hint =
      settings.device === 'cuda'
        ? `it needs onnxruntime-node's CUDA provider: install it with \`${cudaInstallCommand()}\` (CUDA 12 and cuDNN 9 on the library path)`
        : "run 'diffuse doctor' to see which providers work";
    throw new UsageError(`execution provider '${settings.device}' is not available here (${reason}); ${hint}`, { cause: lastError });
  }
  throw new ModelLoadError(`cannot load ${path}: ${reason}`, { cause: lastError });
}

async function openCached(path: string, cacheDir: string, threads?: number): Promise<{ session: ort.InferenceSession; fromCache: boolean }> {
  const cache: OptimizedModelCache = cachedOptimizedModel(path, cacheDir);
  if (cache.ready) {
    try {
      const session = await ort.InferenceSession.create(cache.modelPath, { ...sessionOptions('cpu', threads), graphOptimizationLevel: 'disabled' });
      return { session, fromCache: true };
    } catch {
      // A stale or damaged entry: drop it and optimise again.
      cache.discard();
    }
  }
  // The cache only saves time: where it cannot be written (a full disk, a folder that is a file or
  // read-only), ONNX Runtime fails the whole session for it, so the graph is optimised in memory instead.
  const uncached = async () => ({ session: await ort.InferenceSession.create(path, sessionOptions('cpu', threads)), fromCache: false });
  let target: ReturnType<OptimizedModelCache['begin']>;
  try {
    target = cache.begin();
  } catch {
    return uncached();
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(path, {
      ...sessionOptions('cpu', threads),
      optimizedModelFilePath: target.modelPath,
      extra: { session: { optimized_model_external_initializers_file_name: target.dataFileName, optimized_model_external_initializers_min_size_in_bytes: '1024' } },
    });
  } catch (err) {
    target.abort();
    // A model ONNX Runtime refuses fails the same way again: its first error is the one to report.
    return uncached().catch(() => {
      throw err;
    });
  }
  try {
    target.commit();
  } catch {
    target.abort();
  }
  return { session, fromCache: false };
}

/**
 * WebGPU runs layout-sensitive operators (Conv) in NCHW: in onnxruntime-node 1.30 its NHWC Conv
 * with a 3x3 kernel on 6 or 9 input channels returns wrong values (off by 20 and more where the
 * CPU's are about 1; 3, 4, 5, 7, 8, 10–17 channels are right), and 9 is every inpainting UNet's
 * conv_in. test/webgpu.test.ts's inpaint case catches it.
 */
export function providerEntry(provider: Exclude<Device, 'auto'>): ort.InferenceSession.ExecutionProviderConfig {
  return provider === 'webgpu' ? { name: 'webgpu', preferredLayout: 'NCHW' } : provider;
}

function sessionOptions(provider: Exclude<Device, 'auto'>, threads?: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [providerEntry(provider)],
    graphOptimizationLevel: 'all',
    ...(threads ? { intraOpNumThreads: threads } : {}),
    // Warnings about unused initialisers and the like are noise to a CLI user.
    logSeverityLevel: 3,
  };
}

function gradientSessionOptions(provider: Exclude<Device, 'auto'>, threads?: number): ort.InferenceSession.SessionOptions {
  return { ...sessionOptions(provider, threads), graphOptimizationLevel: 'extended', enableCpuMemArena: false, extra: { session: { disable_prepacking: '1' } } };
}

export interface TensorInfo {
  name: string;
  type: ort.Tensor.Type;
  /** Numbers for fixed dimensions, strings for symbolic ones, empty for scalars. */
  shape: ReadonlyArray<number | string>;
}

export function inputInfo(session: ort.InferenceSession): TensorInfo[] {
  return session.inputMetadata.map(tensorInfo);
}

export function outputInfo(session: ort.InferenceSession): TensorInfo[] {
  return session.outputMetadata.map(tensorInfo);
}

function tensorInfo(meta: ort.InferenceSession.ValueMetadata): TensorInfo {
  if (!meta.isTensor) return { name: meta.name, type: 'float32', shape: [] };
  return { name: meta.name, type: meta.type, shape: meta.shape };
}

/** The named input, or the first whose name matches one of the aliases exports use. */
export function findInput(session: ort.InferenceSession, ...names: string[]): TensorInfo | undefined {
  const inputs = inputInfo(session);
  for (const name of names) {
    const hit = inputs.find((i) => i.name === name);
    if (hit) return hit;
  }
  return undefined;
}
