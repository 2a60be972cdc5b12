import * as ort from 'onnxruntime-node';

/** A graph file's first output for these feeds, from a one-thread CPU session opened and released around the call. */
export async function firstOutput(path: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  try {
    const out = await session.run(feeds);
    return out[session.outputNames[0]!]!.data as Float32Array;
  } finally {
    await session.release();
  }
}
