import type { Command } from 'commander';
import { join } from 'node:path';
import { loadRegistry, resolveModel } from '../models/index.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { explainPrompt, formatExplanation } from '../text/prompt-explain.js';
import { parseInteger } from '../settings/options.js';
import { UsageError } from '../errors.js';
import { promptLimitProblem } from '../text/prompt-limits.js';

/** Shows how a prompt is read: schedule, 75-token chunks, tokens and their weights. Needs only the model's tokenizer. */
export function definePrompt(cmd: Command): Command {
  return cmd
    .argument('<prompt>')
    .option('--explain', 'print the breakdown (the default and only mode)')
    .option('-m, --model <ref>', "whose tokenizer to use (default: the registry's default)")
    .option('-s, --steps <n>', 'steps, for prompt editing', '20')
    .option('--json', 'print as JSON')
    .action(async (prompt: string, opts: { model?: string; steps: string; json?: boolean }) => {
      const steps = parseInteger(1, 1000)(opts.steps, '--steps');
      const problem = promptLimitProblem(prompt, 'the prompt');
      if (problem) throw new UsageError(problem);
      if (opts.model !== undefined && opts.model.trim() === '') throw new UsageError('--model is empty; give a model or leave the option out');
      const model = await resolveModel(opts.model ?? loadRegistry().default, { offline: true });
      const tokenizer = await ClipTokenizer.fromDirectory(join(model.dir, 'tokenizer'));
      const ids = { bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.padTokenId, comma: tokenizer.encode(',')[0] };
      const explanation = explainPrompt(prompt, steps, tokenizer, ids);
      process.stdout.write(opts.json ? `${JSON.stringify(explanation, null, 2)}\n` : `${formatExplanation(explanation).join('\n')}\n`);
    });
}
