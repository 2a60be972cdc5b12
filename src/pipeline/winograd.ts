import { readFileSync } from 'node:fs';
import { cachedModelEditAsync } from '../onnx/edited-model-cache.js';
import { winogradConvs, winogradCandidates } from '../onnx/winograd-conv.js';

export const CONV_ALGORITHMS = ['auto', 'winograd', 'direct'] as const;
export type ConvAlgorithm = (typeof CONV_ALGORITHMS)[number];

/** Bumped when the rewrite changes, so cached graphs of an older one are not reused. */
const WINOGRAD_VERSION = 1;
const DATA_FILE = 'winograd.onnx_data';

/**
 * auto's share of the convolutions: input x output channels from 640x320 to 1920x640 (SD 1.5's
 * and SDXL's 320- and 640-channel levels but the narrowest, 15 of SD 1.5's 52). Measured one
 * Conv at a time at 512² (batch 2), the rewrite ran 1.2-1.4x faster there while 320x320 ran
 * 0.96x (the transforms outweigh a small GEMM), and each MB of transformed weights saves ten
 * times as much time as at the 1280-channel levels: the whole UNet step takes 0.95x as long for
 * 0.47 GB of transformed weights on disk, where rewriting all of them takes 0.89x for 3.7 GB.
 */
const AUTO_SMALLEST = 640 * 320;
const AUTO_LARGEST = 1920 * 640;

export function autoRewrites(inChannels: number, outChannels: number): boolean {
  const pairs = inChannels * outChannels;
  return pairs >= AUTO_SMALLEST && pairs <= AUTO_LARGEST;
}

/**
 * A graph with its 3x3 stride-1 convolutions as Winograd F(2x2, 3x3) (all of 16 channels or more
 * with `winograd`, auto's share with `auto`), rewritten once per source and cached beside links to
 * its weights, the transformed weights in a file of their own. The source itself when the choice
 * rewrites none of its convolutions (a small model under auto), so no entry is made for nothing.
 */
export async function winogradGraph(source: string, cacheDir: string, label: string, conv: Exclude<ConvAlgorithm, 'direct'>): Promise<string> {
  const rewrites = conv === 'auto' ? autoRewrites : undefined;
  if (conv === 'auto' && winogradCandidates(readFileSync(source), rewrites) === 0) return source;
  const edited = await cachedModelEditAsync({
    source,
    cacheDir,
    label: `${label}-winograd`,
    editKey: rewrites ? { winograd: WINOGRAD_VERSION, channelPairs: [AUTO_SMALLEST, AUTO_LARGEST] } : { winograd: WINOGRAD_VERSION },
    edit: async (model, sourceDir, staging) => winogradConvs(model, sourceDir, { file: DATA_FILE, staging }, rewrites ? { rewrites } : {}),
  });
  return edited.path;
}
