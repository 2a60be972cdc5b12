import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { ModelBundle } from '../src/pipeline/load.js';
import { generate } from '../src/pipeline/generate.js';
import { tiledDecode } from '../src/pipeline/vae-tiling.js';
import { FIXTURES, compare, readF32, readJson } from './helpers/fixtures.js';
import { tinyRequest, withModel } from './helpers/tiny-model.js';

/**
 * --vae-tiling against diffusers' AutoencoderKL.tiled_decode (enable_tiling()) on the fixture VAE:
 * 80x48 pixels in 4x2 overlapping tiles of 32. The ONNX decoder agrees with torch to ~2e-6 per call and the
 * blend is a handful of float32 operations, so 1e-5 of the largest value.
 */
interface Refs {
  latents: { file: string; shape: [number, number, number, number] };
  tiled: { file: string; shape: [number, number, number, number] };
  tile_sample_min_size: number;
  tile_latent_min_size: number;
  tile_overlap_factor: number;
}

const DIR = join(FIXTURES, 'vae-tiling');
const refs = readJson<Refs>(join(DIR, 'refs.json'));
const s = suite('VAE tiling = diffusers tiled_decode');
const model = withModel(s);

s('tiled decode matches diffusers, tile by tile and across the seams', async () => {
  const [, c, h, w] = refs.latents.shape;
  const sizes = { latent: refs.tile_latent_min_size, sample: refs.tile_sample_min_size, overlap: refs.tile_overlap_factor };
  assert.equal(sizes, { latent: model().files.vaeSampleSize / model().files.vaeScaleFactor, sample: model().files.vaeSampleSize, overlap: 0.25 }, 'the model folder gives diffusers\' tile sizes');
  let calls = 0;
  const counting = Object.create(model().vaeDecoder) as ModelBundle['vaeDecoder'];
  counting.decode = (latents, dims) => {
    calls++;
    assert.ok(dims[1] <= sizes.latent && dims[2] <= sizes.latent, 'every call is one tile at most');
    return model().vaeDecoder.decode(latents, dims);
  };
  const out = await tiledDecode(counting, readF32(join(DIR, refs.latents.file)), [c, h, w], sizes);
  assert.equal([out.height, out.width], refs.tiled.shape.slice(2));
  assert.is(calls, Math.ceil(h / 12) * Math.ceil(w / 12)); // steps of 3/4 of a 16-latent tile: 4 x 2
  const err = compare(out.data, readF32(join(DIR, refs.tiled.file)));
  assert.ok(err.relToMax < 1e-5, `off by ${err.maxAbs} (${err.relToMax} of max)`);
});

s('a picture that fits one tile is decoded whole; --vae-tiling leaves it unchanged', async () => {
  const request = tinyRequest({ prompt: 'a cat', steps: 2, seed: 1 });
  const plain = await generate(model(), request);
  const tiled = await generate(model(), { ...request, vaeTiling: true });
  assert.equal(tiled.images[0]!.image.data, plain.images[0]!.image.data);
  const wide = await generate(model(), { ...request, width: 80, height: 48, vaeTiling: true });
  assert.equal([wide.images[0]!.image.width, wide.images[0]!.image.height], [80, 48]);
});

s.run();
