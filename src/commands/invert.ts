import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { encodeNpy } from '../onnx/npy.js';
import { writeFileAtomic } from '../image/write.js';
import { invertImage } from '../pipeline/invert.js';
import { loadModel } from '../pipeline/load.js';
import { randomSeed } from '../rng/index.js';
import { loadConfig, resolveSettings } from '../settings/config.js';
import { MODEL_TASK, prepareGeneration, withPromptNetworks } from '../settings/generation-plan.js';
import { optionSpec, type SettingKey } from '../settings/options.js';
import { chooseModel } from './model-choice.js';
import { progressView } from './progress.js';
import { terminalText } from './terminal-text.js';

/**
 * The options of img2img that mean something to an inversion (the picture, its size and encoding,
 * the prompt's conditioning, the model and where it runs), from the one options table.
 */
const INVERT_OPTIONS: readonly SettingKey[] = [
  'initImage', 'model', 'negativePrompt', 'steps', 'cfgScale', 'seed', 'rng', 'width', 'height', 'resizeMode', 'vaeLatents',
  'promptWeighting', 'padCond', 'clipSkip', 'embeddingsDir', 'loraDir', 'device', 'threads', 'attention', 'conv', 'optimizedCache', 'offline', 'yes', 'overwrite',
];

/**
 * Inversion without guidance is what reconstructs: CFG's extrapolation, run upwards, drifts away
 * from the picture. Its own default, so a config file's CFG for painting does not apply here.
 */
const INVERT_CFG = '1';

type InvertFlags = Record<string, unknown> & { output?: string; json?: boolean; quiet?: boolean; config?: string };

export function defineInvert(cmd: Command): Command {
  cmd.argument('[prompt]', 'what the picture shows (the prompt the latents will be sampled with again)', '');
  for (const key of INVERT_OPTIONS) {
    const o = optionSpec(key);
    cmd.option(o.flags, key === 'cfgScale' ? `classifier-free guidance scale while inverting (default: ${INVERT_CFG}, none)` : o.description);
  }
  return cmd
    .requiredOption('-o, --output <file.npy>', 'where the latents go: a .npy of shape (1, 4, height/8, width/8), for txt2img --latents (or numpy, diffusers latents=)')
    .option('--json', 'print one JSON record (path, shape, seed, settings, timings) on stdout')
    .option('-q, --quiet', 'no progress output')
    .option('--config <path>', 'read settings from this config file instead of searching for one')
    .action(async (prompt: string, flags: InvertFlags) => invert(prompt, flags));
}

/**
 * DDIM inversion of a picture through the pipeline (src/pipeline/invert.ts): the settings resolved
 * as img2img's, the model loaded once, the latents written atomically as .npy. `diffuse txt2img
 * PROMPT --latents FILE --sampler ddim` with the same model, prompt, steps and CFG paints the
 * picture again.
 */
async function invert(prompt: string, flags: InvertFlags): Promise<void> {
  const { output, json, quiet, config: configPath, ...rest } = flags;
  if (!output || !/\.npy$/i.test(output)) throw new UsageError(`-o/--output must name a .npy file (got '${String(output)}')`);
  if (!rest.overwrite && existsSync(output)) throw new UsageError(`${output} exists; pass --overwrite to replace it, or choose another -o`);
  const config = await loadConfig(process.cwd(), configPath);
  // One picture, DDIM's own grid; a config file's batch size, sampler or VAE for painting do not apply.
  const resolved = resolveSettings(config, { ...rest, cfgScale: rest.cfgScale ?? INVERT_CFG, sampler: 'ddim', batchSize: 1 }, 'img2img');
  const model = await chooseModel(resolved.settings, MODEL_TASK.img2img, Boolean(quiet));
  const prepared = withPromptNetworks(await prepareGeneration('img2img', resolved, model), prompt);
  const { settings } = prepared;
  const request = prepared.request(prompt, settings.seed ?? randomSeed());
  const { vae: _vae, ...load } = prepared.load;
  const bundle = await loadModel(prepared.modelDir, {
    ...load,
    ...(quiet ? {} : { onNote: (message: string) => process.stderr.write(`${message}\n`) }),
    embeddingPrompts: [prompt, settings.negativePrompt],
    onWarning: (message: string) => process.stderr.write(`warning: ${terminalText(message)}\n`),
  });
  try {
    const progress = progressView({ quiet: Boolean(quiet) });
    let result;
    try {
      result = await invertImage(bundle, request, progress.listener(`inverting on ${bundle.provider}`));
    } finally {
      progress.stop();
    }
    const path = await writeFileAtomic(output, encodeNpy(result.latents, result.dims), { ifExists: settings.overwrite ? 'overwrite' : 'error' });
    const record = { path, shape: result.dims, seed: request.seed, prompt, negativePrompt: request.negativePrompt, steps: request.steps, cfgScale: request.cfgScale, width: request.width, height: request.height, vaeLatents: settings.vaeLatents, model: bundle.name, timings: result.timings };
    process.stdout.write(json ? `${JSON.stringify(record)}\n` : `${path}\n`);
  } finally {
    await bundle.release();
  }
}
