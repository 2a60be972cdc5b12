import type { Command } from 'commander';
import { addGenerationOptions } from './generation-command.js';
import { depth2imgJob, img2imgJob, inpaintJob, outpaintJob, type ImageFlags } from './image-job.js';
import { runGeneration, type GenerationFlags } from './run-generation.js';

/** The picture and how it becomes latents; `resizable` adds --resize-mode (outpaint keeps the picture's size). */
function initOptions(cmd: Command, resizable = true): Command {
  cmd.option('-i, --init-image <path>', 'the picture to start from (PNG, JPEG, WebP)');
  if (resizable) cmd.option('--resize-mode <mode>', 'fit the picture to --width/--height: just-resize, crop-and-resize, resize-and-fill', 'just-resize');
  cmd.option('--strength-mode <mode>', "how --strength becomes steps: diffusers (int(steps x strength)) or a1111 (one step more, never the whole schedule)", 'diffusers');
  return cmd.option('--vae-latents <mode>', "encode the picture to the VAE's mean, or a sample drawn with the seed (diffusers)", 'sample');
}

function maskOptions(cmd: Command): Command {
  return cmd
    .option('--mask <path>', 'white repaints, black keeps; another size of the same aspect is resized')
    .option('--mask-from-alpha', "repaint the init image's transparent pixels")
    .option('--invert-mask', 'repaint the black area instead')
    .option('--mask-blur <px>', 'feather the mask edge (the result blends into the original through it)', '4')
    .option('--inpaint-area <area>', 'whole (the whole picture at --width/--height) or masked (a crop around the mask, painted at full resolution and pasted back)', 'whole')
    .option('--masked-padding <px>', 'with --inpaint-area masked: context around the mask', '32')
    .option('--masked-content <what>', 'what the masked area starts from: original, fill (surrounding colours), latent-noise, latent-nothing', 'original');
}

export function registerImg2img(program: Command): Command {
  const cmd = initOptions(program.command('img2img').description('repaint a picture guided by a prompt').argument('<prompt>', 'what to draw'));
  cmd.option('--strength <x>', 'how much changes: 0 keeps the picture (VAE round trip), 1 starts from noise', '0.75');
  return addGenerationOptions(cmd).action(async (prompt: string, flags: GenerationFlags & ImageFlags) => {
    await runGeneration({ prompts: [prompt], flags, task: 'img2img', job: () => img2imgJob(flags) });
  });
}

export function registerInpaint(program: Command): Command {
  const cmd = maskOptions(initOptions(program.command('inpaint').description('repaint the masked part of a picture').argument('<prompt>', 'what to draw there')));
  cmd.option('--strength <x>', 'how much the masked area changes (1: from noise)', '1');
  return addGenerationOptions(cmd).action(async (prompt: string, flags: GenerationFlags & ImageFlags) => {
    await runGeneration({ prompts: [prompt], flags, task: 'inpaint', job: (files) => inpaintJob(flags, files.sampleSize * files.vaeScaleFactor) });
  });
}

export function registerOutpaint(program: Command): Command {
  const cmd = initOptions(program.command('outpaint').description('extend a picture beyond its borders').argument('<prompt>', 'what the new area shows'), false)
    .option('--extend <sides>', 'pixels to add: 128 (every side) or left=128,right=128,top=0,bottom=256 (multiples of 8)')
    .option('--fill <how>', 'pre-fill of the new area: stretch (edge pixels), blur, noise', 'stretch')
    .option('--overlap <px>', 'how far into the old picture the seam is repainted (multiple of 8)', '16')
    .option('--mask-blur <px>', 'feather of the seam', '8')
    .option('--pass-size <px>', "largest extension per pass (default: half the model's native size)")
    .option('--strength <x>', 'how much the new area follows the fill (1: from noise)', '1');
  return addGenerationOptions(cmd).action(async (prompt: string, flags: GenerationFlags & ImageFlags) => {
    await runGeneration({ prompts: [prompt], flags, task: 'inpaint', job: (files) => outpaintJob(flags, files.sampleSize * files.vaeScaleFactor) });
  });
}

export function registerDepth2img(program: Command): Command {
  const cmd = initOptions(program.command('depth2img').description("repaint a picture keeping its depth layout (depth-conditioned models)").argument('<prompt>', 'what to draw'))
    .option('--depth-map <path>', "the depth to follow: a grey picture, white = near (any size; stretched to the full range); default: the model's depth_estimator/ reads the picture")
    .option('--strength <x>', 'how much changes: 0 keeps the picture, 1 starts from noise (the depth still holds)', '0.8');
  return addGenerationOptions(cmd).action(async (prompt: string, flags: GenerationFlags & ImageFlags) => {
    await runGeneration({ prompts: [prompt], flags, task: 'depth2img', job: (files) => depth2imgJob(flags, files.dir) });
  });
}
