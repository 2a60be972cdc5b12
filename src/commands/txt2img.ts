import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { promptLimitProblem } from '../text/prompt-limits.js';
import { flagsFromImage } from './from-image.js';
import { addGenerationOptions } from './generation-command.js';
import { runGeneration, type GenerationFlags, type GenerationJob } from './run-generation.js';

export function defineTxt2img(txt2img: Command): Command {
  const cmd = txt2img
    .argument('[prompt]', 'what to draw (optional with --from or --prompts-file)')
    .option('--from <image.png>', "re-run the settings stored in a PNG (diffuse's or AUTOMATIC1111's); flags given here win")
    .option('--prompts-file <path>', 'one prompt per line (- reads standard input; blank lines and # comments skipped), or JSON lines {"prompt": ..., "steps": ...} whose options override the flags; run on as few model loads as they allow');
  return addGenerationOptions(cmd, 'txt2img').action(async (prompt: string | undefined, flags: GenerationFlags & { from?: string; promptsFile?: string }) => {
    if (flags.promptsFile !== undefined) {
      if (prompt !== undefined || flags.from) throw new UsageError('--prompts-file gives the prompts: pass no prompt argument and no --from with it');
      await runGeneration({ jobs: await readPromptsFile(flags.promptsFile), flags, command: 'txt2img' });
      return;
    }
    if (!flags.from) {
      if (prompt === undefined) throw new UsageError("missing the prompt: diffuse txt2img \"what to draw\" (or --from image.png, or --prompts-file file)");
      await runGeneration({ jobs: [{ prompt }], flags, command: 'txt2img' });
      return;
    }
    const recorded = await flagsFromImage(flags.from);
    if (!flags.quiet) for (const note of recorded.notes) process.stderr.write(`note: ${note}\n`);
    await runGeneration({
      jobs: [{ prompt: prompt ?? recorded.prompt }],
      flags,
      recorded: recorded.flags,
      command: 'txt2img',
      ...(recorded.loraHashes ? { recordedLoras: recorded.loraHashes } : {}),
    });
  });
}

/** A prompts file (or standard input) larger than this is refused: 16 MB is tens of thousands of prompts. */
const MAX_PROMPTS_FILE_BYTES = 16 * 2 ** 20;

/**
 * The jobs of a --prompts-file: one prompt per line, blank lines and lines starting with # skipped.
 * A file whose first such line is a JSON object ({"prompt": ...) is JSON lines, each an object with
 * the prompt and any options of the table (config-file keys) for that line alone, as A1111's
 * "Prompts from file" script takes per-line options.
 */
async function readPromptsFile(path: string): Promise<GenerationJob[]> {
  const limits = { label: '--prompts-file', maxBytes: MAX_PROMPTS_FILE_BYTES, hint: 'split it into several files' };
  const text = (path === '-' ? await readStream(process.stdin, limits.maxBytes) : await readInputFile(path, limits)).toString('utf8');
  const lines = text.split(/\r?\n/).map((l, i) => ({ text: l.trim(), number: i + 1 })).filter((l) => l.text !== '' && !l.text.startsWith('#'));
  if (lines.length === 0) throw new UsageError(`--prompts-file: ${path} has no prompts (one per line; # starts a comment line)`);
  const name = path === '-' ? 'standard input' : path;
  const jobs = /^\{\s*"/.test(lines[0]!.text) ? lines.map((l) => jsonLine(l.text, `${name} line ${l.number}`)) : lines.map((l) => ({ prompt: l.text }));
  // Checked here for every line, so a bad one is named by its line before any model loads.
  for (const [i, job] of jobs.entries()) {
    const problem = promptLimitProblem(job.prompt, `--prompts-file line ${lines[i]!.number}`);
    if (problem) throw new UsageError(problem);
  }
  return jobs;
}

function jsonLine(text: string, where: string): GenerationJob {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${where}: not valid JSON (${(err as Error).message}); in a JSON-lines prompts file every line is an object`, { cause: err });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new UsageError(`${where}: a JSON object is expected, {"prompt": "...", ...options}`);
  const { prompt, ...values } = value as Record<string, unknown>;
  if (typeof prompt !== 'string') throw new UsageError(`${where}: "prompt" must be a string`);
  return { prompt, values, where };
}

/** Standard input, refused once it passes `maxBytes` (a pipe can be endless). */
async function readStream(stream: NodeJS.ReadableStream, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) throw new UsageError(`--prompts-file -: standard input passes ${maxBytes / 2 ** 20} MB; split the prompts into several runs`);
    chunks.push(Buffer.from(chunk as Buffer));
  }
  return Buffer.concat(chunks);
}
