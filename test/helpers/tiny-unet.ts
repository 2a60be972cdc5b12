import * as ort from 'onnxruntime-node';
import { normals } from './random.js';

/** tiny-sd's UNet (or an edit of it) on one fixed CFG batch: its noise prediction, one thread. */
export async function tinyUnetOutput(model: Uint8Array): Promise<Float32Array> {
  const feeds = {
    sample: new ort.Tensor('float32', Float32Array.from(normals(2 * 4 * 16 * 16, 1)), [2, 4, 16, 16]),
    timestep: new ort.Tensor('float32', Float32Array.from([981, 407]), [2]),
    encoder_hidden_states: new ort.Tensor('float32', Float32Array.from(normals(2 * 77 * 32, 2)), [2, 77, 32]),
  };
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    return (await session.run(feeds))[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}
