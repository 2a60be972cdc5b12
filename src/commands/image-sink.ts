import type { OutputNameVars } from '../image/output-path.js';
import type { GeneratedImage, GenerationResult } from '../pipeline/types.js';
import type { Settings } from '../settings/options.js';

/** Takes one batch of a job's images as they are made: `firstIndex` is the first image's place in the job. */
export type Writer = (images: GeneratedImage[], timings: GenerationResult['timings'], firstIndex: number, batch: number) => Promise<void>;

/** Where a run's images go: each job's files (the usual run), or the tiles of one X/Y/Z grid. */
export interface ImageSink {
  writerFor(job: number, settings: Settings): Writer;
  /** After the last image: what is written from all of them (the grid). */
  finish(): Promise<void>;
}

/** The values a folder's name template fills in for one image. */
export function nameVars(image: GeneratedImage, index: number, batch: number): OutputNameVars {
  const m = image.metadata;
  return { seed: image.seed, index, batch, prompt: m.prompt, model: m.model, sampler: m.sampler, steps: m.steps, cfg: m.cfgScale, width: m.width, height: m.height, date: new Date() };
}
