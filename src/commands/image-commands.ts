import type { Command } from 'commander';
import type { GeneratingCommand } from '../settings/options.js';
import { addGenerationOptions } from './generation-command.js';
import { runGeneration, type GenerationFlags } from './run-generation.js';

const PROMPTS: Record<Exclude<GeneratingCommand, 'txt2img'>, string> = {
  img2img: 'what to draw',
  inpaint: 'what to draw there',
  outpaint: 'what the new area shows',
  depth2img: 'what to draw',
};

/** img2img, inpaint, outpaint and depth2img: a prompt and the table's options (the picture and mask are settings too). */
export function defineImageCommand(command: Exclude<GeneratingCommand, 'txt2img'>) {
  return (cmd: Command): Command =>
    addGenerationOptions(cmd.argument('<prompt>', PROMPTS[command]), command).action(async (text: string, flags: GenerationFlags) => {
      await runGeneration({ jobs: [{ prompt: text }], flags, command });
    });
}
