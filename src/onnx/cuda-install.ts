import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * onnxruntime-node ships the CPU and WebGPU providers; its CUDA provider is downloaded from
 * NuGet by its install script. npm 11 no longer runs a dependency's install script unless the
 * project or the command allows it, and warns about unknown config keys such as
 * --onnxruntime-node-install, so the one way that works for every kind of install (a clone, a
 * global install, a project dependency) is to run that script directly with the environment
 * variable it reads. The value is `true` (install what this platform lacks: CUDA 12 on Linux
 * x64), not `cuda12`: the script's parser (1.30, 1.31) falls through for named values and treats
 * them as unset, which inside npm's environment means "a local install, skip". This is that
 * command, for the onnxruntime-node diffuse actually loads.
 */
export function cudaInstallCommand(): string {
  const packageJson = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  const script = join(dirname(packageJson), 'script', 'install.js');
  return `ONNXRUNTIME_NODE_INSTALL=true node ${JSON.stringify(script)}`;
}
