import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scratch } from './helpers/scratch.js';
import { convertCheckpoint } from '../src/graphs/convert.js';
import { generate } from '../src/pipeline/generate.js';
import { loadModel } from '../src/pipeline/load.js';
import { discreteSchedule } from '../src/schedulers/index.js';
import { compare, readF32 } from './helpers/fixtures.js';
import { referenceRequest } from './helpers/reference-case.js';
import { GRAPH_FIXTURES, graphFixture, writeCheckpoint } from './helpers/synthetic-checkpoint.js';

/**
 * A whole txt2img from a single-file checkpoint: converted, loaded and run by the pipeline as any
 * model folder is (its tokenizer and graphs, attention fused as by default; the scheduler the case
 * configured, as test/pipeline.test.ts runs its cases),
 * against diffusers' StableDiffusionPipeline on the same file's weights: ε (SD 1.x, CLIP) and
 * v-prediction (SD 2.x, OpenCLIP, "!" padding). The pipeline's usual tolerance: 1e-5 of the
 * largest latent.
 */
const LATENT_TOLERANCE = 1e-5;

for (const name of ['sd1', 'sd2v'] as const) {
  const fixture = graphFixture(name);
  const c = fixture.txt2img!;
  const S = suite(`txt2img from ${name}.safetensors = diffusers StableDiffusionPipeline`);
  const tempDir = scratch(S);
  S(`${c.name}: ${c.num_inference_steps} Euler steps, CFG ${c.guidance_scale}`, async () => {
    const work = tempDir();
    const prediction = c.scheduler.overrides?.['prediction_type'] as 'epsilon' | 'v_prediction';
    const { dir } = await convertCheckpoint(writeCheckpoint(work, name), join(work, 'onnx'), { precision: 'fp32', prediction });
    const bundle = await loadModel(dir, { device: 'cpu', fuseAttention: true, graphCache: join(work, 'graphs') });
    try {
      const result = await generate({ ...bundle, schedule: discreteSchedule(c.scheduler.config) }, referenceRequest(c));
      const e = compare(result.latents, readF32(join(GRAPH_FIXTURES, c.final_latents.file)));
      assert.ok(e.relToMax < LATENT_TOLERANCE, `final latents off by ${e.maxAbs} (${e.relToMax.toExponential(2)} of max)`);
    } finally {
      await bundle.release();
    }
  });
  S.run();
}
