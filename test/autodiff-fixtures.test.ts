import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initializers, readFloatInitializer } from '../src/onnx/initializers.js';
import { ModelProto } from '../src/onnx/proto.js';
import { takeInputsEmbeds } from '../src/onnx/text-encoder-embeds-input.js';
import { buildGradientGraph, type GradientGraphOptions } from '../src/train/autodiff/gradient-graph.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';

/**
 * Gradients of the tiny fixture models against torch autograd on the same weights
 * (tools/make_autodiff_refs.py): the tiny-sd text encoder with its token lookup cut
 * (d⟨w, last_hidden_state⟩ / d inputs_embeds), and the tiny-sd, inpainting and LCM UNets
 * (d⟨w, out_sample⟩ / d sample and / d encoder_hidden_states; one case through the graph's own
 * MSE loss at batch 2). Both sides compute in float32 with different summation orders, and
 * the UNet's backward runs through ~550 differentiated nodes: gradients must agree within
 * 1e-5 of their largest entry (seen ≤ 1.7e-6), forward outputs (and the loss) within 1e-5.
 */
const GRADIENT_TOLERANCE = 1e-5;
const FORWARD_TOLERANCE = 1e-5;
const REFS = join(FIXTURES, 'autodiff');

interface ArrayRef {
  file: string;
  shape: number[];
}

interface RefCase {
  name: string;
  model: string;
  cut_token_embedding?: boolean;
  output: string;
  inputs: Record<string, ArrayRef>;
  timestep?: number[];
  objective: { kind: 'weighted-sum'; weight: ArrayRef } | { kind: 'mse'; target: ArrayRef; loss: number };
  value: ArrayRef;
  grads: Record<string, ArrayRef>;
}

const refs = readJson<{ cases: RefCase[] }>(join(REFS, 'refs.json'));
const read = (ref: ArrayRef): Float32Array => readF32(join(REFS, ref.file));
const f32 = (data: Float32Array, dims: readonly number[]) => new ort.Tensor('float32', data, dims);

function modelBytes(c: RefCase): Uint8Array {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, c.model, 'model.onnx')));
  return c.cut_token_embedding ? takeInputsEmbeds(bytes).model : bytes;
}

for (const c of refs.cases) {
  test(`${c.name}: gradients equal torch autograd`, async () => {
    const wrt = Object.keys(c.grads);
    const pinShapes: Record<string, number[]> = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, v.shape]));
    if (c.timestep) pinShapes.timestep = [c.timestep.length];
    // The cut encoder still reads input_ids' shape (folded away once pinned: it is not fed).
    if (c.cut_token_embedding) pinShapes.input_ids = c.inputs.inputs_embeds!.shape.slice(0, 2);
    const options: GradientGraphOptions = { wrt, pinShapes, ...(c.objective.kind === 'mse' ? { loss: { kind: 'mse', output: c.output } } : { outputs: [c.output] }) };
    const graph = buildGradientGraph(modelBytes(c), options);
    const feeds: Record<string, ort.Tensor> = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, f32(read(v), v.shape)]));
    if (c.timestep) feeds.timestep = f32(Float32Array.from(c.timestep), [c.timestep.length]);
    if (c.objective.kind === 'mse') feeds[graph.loss!.target] = f32(read(c.objective.target), c.objective.target.shape);
    else feeds[graph.seeds[c.output]!] = f32(read(c.objective.weight), c.objective.weight.shape);
    assert.equal(graph.inputs.map((i) => i.name).sort(), Object.keys(feeds).sort(), 'the graph reads exactly these inputs');
    const session = await ort.InferenceSession.create(graph.model, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    try {
      const out = await session.run(feeds);
      const forward = compare(out[c.output]!.data as Float32Array, read(c.value));
      assert.ok(forward.relToMax <= FORWARD_TOLERANCE, `forward output off by ${forward.relToMax}`);
      if (c.objective.kind === 'mse') {
        const loss = (out[graph.loss!.output]!.data as Float32Array)[0]!;
        assert.ok(Math.abs(loss - c.objective.loss) <= FORWARD_TOLERANCE * c.objective.loss, `loss ${loss} vs torch ${c.objective.loss}`);
      }
      for (const w of wrt) {
        const { relToMax } = compare(out[graph.gradOutputs[w]!]!.data as Float32Array, read(c.grads[w]!));
        console.log(`  ${c.name} d/d ${w}: ${relToMax.toExponential(2)} of max (${graph.stats.differentiatedNodes} nodes differentiated)`);
        assert.ok(relToMax <= GRADIENT_TOLERANCE, `gradient w.r.t. ${w} off by ${relToMax} of max`);
      }
    } finally {
      await session.release();
    }
  });
}

test('the cut text encoder computes what the original does from the looked-up rows', async () => {
  const source = new Uint8Array(readFileSync(join(FIXTURES, 'tiny-sd/text_encoder/model.onnx')));
  const cut = takeInputsEmbeds(source);
  const table = initializers(ModelProto.decode(source).graph).find((i) => i.name === cut.table)!;
  const rows = readFloatInitializer(table, '');
  const ids = [49406, 320, 1929, 539, 320, 2368, 49407, ...new Array<number>(70).fill(49407)];
  const embeds = new Float32Array(ids.length * cut.width);
  ids.forEach((id, i) => embeds.set(rows.subarray(id * cut.width, (id + 1) * cut.width), i * cut.width));
  const run = async (model: Uint8Array, feeds: Record<string, ort.Tensor>) => {
    const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    const out = await session.run(feeds);
    await session.release();
    return out;
  };
  const idsTensor = new ort.Tensor('int32', Int32Array.from(ids), [1, ids.length]);
  const original = await run(source, { input_ids: idsTensor });
  const edited = await run(cut.model, { input_ids: idsTensor, inputs_embeds: f32(embeds, [1, ids.length, cut.width]) });
  assert.equal(Array.from(edited.last_hidden_state!.data as Float32Array), Array.from(original.last_hidden_state!.data as Float32Array), 'last_hidden_state bit for bit');
  assert.equal(Array.from(edited.pooler_output!.data as Float32Array), Array.from(original.pooler_output!.data as Float32Array), 'pooler_output bit for bit');
  assert.ok(cut.keepsInputIds, 'input_ids still feeds the pooler');
  assert.not.ok(initializers(ModelProto.decode(cut.model).graph).some((i) => i.name === cut.table), 'the token table is gone');
});

test.run();
