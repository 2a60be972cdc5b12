import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { flagsFromImage } from './from-image.js';
import { addGenerationOptions } from './generation-command.js';
import { runGeneration, type GenerationFlags } from './run-generation.js';

export function registerTxt2img(program: Command): Command {
  const cmd = program
    .command('txt2img')
    .description('generate images from a text prompt')
    .argument('[prompt]', 'what to draw (optional with --from)')
    .option('--from <image.png>', "re-run the settings stored in a PNG (diffuse's or AUTOMATIC1111's); flags given here win");
  return addGenerationOptions(cmd).action(async (prompt: string | undefined, flags: GenerationFlags & { from?: string }) => {
    if (!flags.from) {
      if (prompt === undefined) throw new UsageError("missing the prompt: diffuse txt2img \"what to draw\" (or --from image.png)");
      await runGeneration({ prompt, flags, task: 'txt2img' });
      return;
    }
    const recorded = await flagsFromImage(flags.from);
    if (!flags.quiet) for (const note of recorded.notes) process.stderr.write(`note: ${note}\n`);
    const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
    await runGeneration({ prompt: prompt ?? recorded.prompt, flags: { ...recorded.flags, ...given }, task: 'txt2img' });
  });
}
