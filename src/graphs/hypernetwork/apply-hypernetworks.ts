import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { cachedModelEdit } from '../../onnx/edited-model-cache.js';
import { CheckpointError } from '../errors.js';
import { applyHypernetworks } from './hypernetwork-edit.js';
import { readHypernetwork } from './hypernetwork-file.js';

/** Hypernetworks added to a UNet graph at load, the edited graph cached per (graph, files, strengths). */

/** One hypernetwork as a request or a `<hypernet:name:strength>` tag gives it. */
export interface HypernetworkChoice {
  path: string;
  /** The name the prompt used (default: the file's name). */
  name?: string;
  /** A1111's multiplier: x + mlp(x) × strength. */
  strength: number;
}

/** Bumped when a change here changes the edited graph for the same inputs. */
const EDIT_VERSION = 1;

function fileHash(path: string): string {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch (err) {
    throw new CheckpointError(`cannot read hypernetwork ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The UNet graph with the hypernetworks' layers on its attention k/v inputs (the graph itself when none are given). */
export function withHypernetworks(unet: string, choices: readonly HypernetworkChoice[], cacheDir: string): string {
  if (choices.length === 0) return unet;
  return cachedModelEdit({
    source: unet,
    cacheDir,
    label: 'unet-hypernetwork',
    editKey: { hypernetwork: EDIT_VERSION, nets: choices.map((c) => ({ content: fileHash(c.path), strength: c.strength })) },
    edit: (model) => applyHypernetworks(model, choices.map((c) => ({ net: { ...readHypernetwork(c.path), name: c.name ?? basename(c.path, extname(c.path)) }, multiplier: c.strength }))),
  }).path;
}
