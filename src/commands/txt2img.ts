import type { Command } from 'commander';
import { addGenerationOptions } from './generation-command.js';
import { runGeneration, type GenerationFlags } from './run-generation.js';

export function registerTxt2img(program: Command): Command {
  const cmd = program
    .command('txt2img')
    .description('generate images from a text prompt')
    .argument('<prompt>', 'what to draw');
  return addGenerationOptions(cmd).action(async (prompt: string, flags: GenerationFlags) => {
    await runGeneration({ prompt, flags, task: 'txt2img' });
  });
}
