import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { flagsFromImage } from './from-image.js';
import { addGenerationOptions } from './generation-command.js';
import { runGeneration, type GenerationFlags } from './run-generation.js';

export function defineTxt2img(txt2img: Command): Command {
  const cmd = txt2img
    .argument('[prompt]', 'what to draw (optional with --from or --prompts-file)')
    .option('--from <image.png>', "re-run the settings stored in a PNG (diffuse's or AUTOMATIC1111's); flags given here win")
    .option('--prompts-file <path>', 'one prompt per line (- reads standard input; blank lines and # comments skipped), each run with the same settings on one loaded model');
  return addGenerationOptions(cmd, 'txt2img').action(async (prompt: string | undefined, flags: GenerationFlags & { from?: string; promptsFile?: string }) => {
    if (flags.promptsFile !== undefined) {
      if (prompt !== undefined || flags.from) throw new UsageError('--prompts-file gives the prompts: pass no prompt argument and no --from with it');
      await runGeneration({ prompts: await readPromptsFile(flags.promptsFile), flags, command: 'txt2img' });
      return;
    }
    if (!flags.from) {
      if (prompt === undefined) throw new UsageError("missing the prompt: diffuse txt2img \"what to draw\" (or --from image.png, or --prompts-file file)");
      await runGeneration({ prompts: [prompt], flags, command: 'txt2img' });
      return;
    }
    const recorded = await flagsFromImage(flags.from);
    if (!flags.quiet) for (const note of recorded.notes) process.stderr.write(`note: ${note}\n`);
    const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
    await runGeneration({ prompts: [prompt ?? recorded.prompt], flags: { ...recorded.flags, ...given }, command: 'txt2img' });
  });
}

/** The prompts of a --prompts-file: one per line, blank lines and lines starting with # skipped. */
async function readPromptsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = path === '-' ? await readStream(process.stdin) : await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--prompts-file: cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
  const prompts = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (prompts.length === 0) throw new UsageError(`--prompts-file: ${path} has no prompts (one per line; # starts a comment line)`);
  return prompts;
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}
