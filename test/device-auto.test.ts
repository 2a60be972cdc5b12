import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hasGpuDevice } from '../src/onnx/gpu-device.js';
import { autoProviderOrder } from '../src/onnx/session.js';

test('auto: CUDA, then the platform provider, then WebGPU only with a GPU, then the CPU', () => {
  assert.equal(autoProviderOrder('linux', true), ['cuda', 'webgpu', 'cpu']);
  assert.equal(autoProviderOrder('linux', false), ['cuda', 'cpu']);
  assert.equal(autoProviderOrder('win32', true), ['cuda', 'dml', 'webgpu', 'cpu']);
  assert.equal(autoProviderOrder('darwin', true), ['coreml', 'webgpu', 'cpu']);
});

test('a GPU on Linux is a DRM render node or an NVIDIA device; nothing else counts', () => {
  const dev = mkdtempSync(join(tmpdir(), 'diffuse-dev-'));
  try {
    assert.is(hasGpuDevice('linux', dev), false, 'no /dev/dri at all');
    mkdirSync(join(dev, 'dri'));
    writeFileSync(join(dev, 'dri', 'card0'), '');
    assert.is(hasGpuDevice('linux', dev), false, 'a display-only card node');
    writeFileSync(join(dev, 'dri', 'renderD128'), '');
    assert.is(hasGpuDevice('linux', dev), true);
    rmSync(join(dev, 'dri'), { recursive: true });
    writeFileSync(join(dev, 'nvidia0'), '');
    assert.is(hasGpuDevice('linux', dev), true);
    assert.is(hasGpuDevice('darwin', dev), true);
  } finally {
    rmSync(dev, { recursive: true, force: true });
  }
});

test.run();
