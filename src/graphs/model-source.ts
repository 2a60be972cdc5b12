import { statSync } from 'node:fs';
import { openWeightFile } from './checkpoint-store.js';
import { detectSingleFile } from './detect.js';
import { openDiffusersFolder } from './diffusers-folder.js';
import type { Locator } from './ldm-keys.js';
import type { ComponentSource, ModelSource } from './source.js';

/** Opens a single-file checkpoint or a diffusers folder as a ModelSource. */
export async function openModelSource(path: string): Promise<ModelSource> {
  if (statSync(path).isDirectory()) return openDiffusersFolder(path);
  const store = await openWeightFile(path);
  try {
    const { config, locators } = detectSingleFile(store);
    const component = (locate: Locator): ComponentSource => ({ store, locate });
    return {
      config,
      ...(locators.textEncoder ? { textEncoder: component(locators.textEncoder) } : {}),
      ...(locators.textEncoder2 ? { textEncoder2: component(locators.textEncoder2) } : {}),
      unet: component(locators.unet),
      vae: component(locators.vae),
      statesSize: false,
      close: () => store.close(),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
