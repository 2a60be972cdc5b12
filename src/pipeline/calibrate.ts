import { openSession, type SessionSettings } from '../onnx/session.js';
import { assemble, type BundleParts } from './bundle.js';
import { generate } from './generate.js';
import { requirePart } from './model-files.js';
import { calibrationRequests, recordRanges, type Calibrate, type Ranges, type UnetKind } from './quantize.js';
import { Unet } from './unet.js';

/**
 * Calibration runs the pipeline itself on the float graphs with range outputs: the activations
 * are those of real trajectories, not of synthetic inputs. The graphs are opened without the
 * optimised-graph cache (they are used once).
 */
export function calibrator(parts: BundleParts, settings: SessionSettings): Calibrate {
  return async (graphs) => {
    const once: SessionSettings = { device: settings.device, ...(settings.threads ? { threads: settings.threads } : {}) };
    const ranges = { unet: new Map() as Ranges, decoder: new Map() as Ranges };
    const [texts, unet, decoder] = await Promise.all([
      Promise.all(parts.texts.map((t) => openSession(t.path, once))),
      openSession(graphs.unet.path, once),
      openSession(graphs.decoder.path, once),
    ]);
    const channels = new Unet(unet).inChannels;
    const kind: UnetKind = channels === 9 ? 'inpainting' : channels === parts.files.latentChannels + 1 ? 'depth' : 'plain';
    const encoder = kind === 'plain' ? undefined : await openSession(requirePart(parts.files.dir, 'vae_encoder'), once);
    const bundle = assemble(parts, {
      texts,
      unet: recordRanges(unet, graphs.unet.activations, ranges.unet),
      decoder: recordRanges(decoder, graphs.decoder.activations, ranges.decoder),
      encoder,
    });
    try {
      const lcm = bundle.unet.timestepCondDim !== undefined;
      const nativeSize = parts.files.sampleSize * parts.files.vaeScaleFactor;
      for (const request of calibrationRequests({ nativeSize, lcm, unet: kind })) await generate(bundle, request);
    } finally {
      await bundle.release();
    }
    return ranges;
  };
}

