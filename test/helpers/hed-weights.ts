import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { FIXTURES, readJson } from './fixtures.js';
import { checkpointBytes, sha256, type Recipe } from './synthetic-checkpoint.js';

/** tools/make_hed_refs.py's fixtures: a random ControlNetHED_Apache2 as a recipe, pictures and controlnet_aux's edge maps. */
export const HED_FIXTURES = join(FIXTURES, 'hed');

export function hedRecipe(): Recipe {
  return readJson<Recipe>(join(HED_FIXTURES, 'hed.recipe.json.gz'));
}

/** The random HED's weights written to `<dir>/ControlNetHED.safetensors`, checked to be the file the references were made from. */
export function writeHedWeights(dir: string): string {
  const bytes = checkpointBytes(hedRecipe());
  assert.is(sha256(bytes), readJson<{ safetensors_sha256: string }>(join(HED_FIXTURES, 'cases.json')).safetensors_sha256, 'the recipe writes the file the references were made from');
  const path = join(dir, 'ControlNetHED.safetensors');
  writeFileSync(path, bytes);
  return path;
}
