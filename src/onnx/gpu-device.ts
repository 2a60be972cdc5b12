import { existsSync, readdirSync } from 'node:fs';

/**
 * Whether this machine has a GPU that WebGPU could run on rather than a software adapter. Dawn
 * also offers Mesa's lavapipe (Vulkan on the CPU) as an adapter, which runs a graph correctly but
 * several times slower than the CPU provider (README "GPU providers"), and ONNX Runtime does not
 * say which adapter it got. On Linux a GPU driver exposes a DRM render node (/dev/dri/renderD*) or,
 * NVIDIA's, /dev/nvidia0; without either the only adapter is a software one. Every Mac has a Metal
 * GPU; on Windows DirectML comes before WebGPU in `auto` and is built in.
 */
export function hasGpuDevice(platform: NodeJS.Platform = process.platform, dev = '/dev'): boolean {
  if (platform !== 'linux') return true;
  const renderNodes = (() => {
    try {
      return readdirSync(`${dev}/dri`).some((name) => name.startsWith('renderD'));
    } catch {
      return false;
    }
  })();
  return renderNodes || existsSync(`${dev}/nvidia0`);
}
