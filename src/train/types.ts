import type { Device } from '../onnx/session.js';
import type { AdamWSettings } from './adamw.js';
import type { LrScheduleName } from './lr-schedule.js';

/** One textual-inversion run, everything resolved (the command fills it from flags). */
export interface TrainRequest {
  /** A diffusers ONNX folder. */
  modelDir: string;
  imagesDir: string;
  token: string;
  initWord: string;
  vectors: number;
  /** Caption templates; `{}` or `[name]` marks the token, `[filewords]` the picture's caption. */
  templates: readonly string[];
  resolution: number;
  centerCrop: boolean;
  flipP: number;
  steps: number;
  /** A rate, or A1111's "rate:step, rate:step, rate" string. */
  lr: string;
  lrSchedule: LrScheduleName;
  lrWarmup: number;
  batchSize: number;
  gradientAccumulation: number;
  adamw: AdamWSettings;
  seed: number;
  /** Save a checkpoint (and the state) every this many steps; 0: only at the end and on Ctrl-C. */
  saveEvery: number;
  /** Generate a preview every this many steps (through hooks.preview); 0: none. */
  previewEvery: number;
  outputDir: string;
  overwrite: boolean;
  resume: boolean;
  device: Device;
  threads?: number;
  /** The edited-graph cache folder (the gradient graphs are cached there). */
  graphCache: string;
}

export type TrainEvent =
  | { kind: 'note'; message: string }
  | { kind: 'step'; step: number; steps: number; loss: number; lr: number; seconds: number }
  | { kind: 'saved'; step: number; path: string };

export interface TrainHooks {
  onEvent(event: TrainEvent): void;
  /** Asked after each step (Ctrl-C): the run saves its state and returns. */
  stopRequested(): boolean;
  /** Every previewEvery steps, with the embedding file's bytes as of that step; the gradient sessions are closed meanwhile, so it may load the model. */
  preview?(step: number, embedding: Uint8Array): Promise<void>;
}

export interface TrainResult {
  /** The final embedding, or the last checkpoint of an interrupted run. */
  embedding: string;
  state: string;
  steps: number;
  losses: number[];
  interrupted: boolean;
}
