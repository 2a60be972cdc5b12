import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { FIXTURES, readJson } from './fixtures.js';
import { checkpointBytes, sha256, type Recipe } from './synthetic-checkpoint.js';

/**
 * tools/make_hed_refs.py's, make_pidinet_refs.py's, make_lineart_refs.py's, make_lineart_anime_refs.py's, make_openpose_refs.py's and make_mlsd_refs.py's fixtures: a random preprocessor network as a
 * recipe, pictures and controlnet_aux's / sd-webui-controlnet's maps.
 */
export type DetectorFixture = 'hed' | 'lineart' | 'lineart-anime' | 'mlsd' | 'openpose' | 'pidinet';

export const detectorFixtures = (kind: DetectorFixture): string => join(FIXTURES, kind);

export function detectorRecipe(kind: DetectorFixture): Recipe {
  return readJson<Recipe>(join(detectorFixtures(kind), `${kind}.recipe.json.gz`));
}

/** The random network's weights written to `<dir>/<kind>.safetensors`, checked to be the file the references were made from. */
export function writeDetectorWeights(kind: DetectorFixture, dir: string): string {
  const bytes = checkpointBytes(detectorRecipe(kind));
  assert.is(sha256(bytes), readJson<{ safetensors_sha256: string }>(join(detectorFixtures(kind), 'cases.json')).safetensors_sha256, 'the recipe writes the file the references were made from');
  const path = join(dir, `${kind}.safetensors`);
  writeFileSync(path, bytes);
  return path;
}
