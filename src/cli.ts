import { Command, CommanderError } from 'commander';
import chalk from 'chalk';
import { DiffuseError } from './errors.js';
import { registerTxt2img } from './commands/txt2img.js';
import { registerInfo } from './commands/info.js';
import { registerConfig } from './commands/config.js';
import { registerDoctor } from './commands/doctor.js';
import { registerModels } from './commands/models.js';
import { registerPrompt } from './commands/prompt.js';
import { registerDepth2img, registerImg2img, registerInpaint, registerOutpaint } from './commands/image-commands.js';
import { VERSION } from './version.js';

/**
 * The one place that turns failures into what a terminal user sees: one line, the exit code
 * the error carries (2 usage, 1 runtime), and a stack trace only with --verbose.
 */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  // `diffuse ... | head` closes the pipe early: that ends the output, not the program with a trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode === undefined ? 0 : Number(process.exitCode));
    throw err;
  });
  const program = new Command('diffuse')
    .description('Stable Diffusion on the command line, on ONNX Runtime')
    .version(VERSION, '-V, --version')
    .option('--verbose', 'print stack traces and extra detail')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const register of [registerTxt2img, registerImg2img, registerInpaint, registerOutpaint, registerDepth2img, registerModels, registerPrompt, registerInfo, registerConfig, registerDoctor]) {
    register(program);
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    return report(err, verbose);
  }
}

function report(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version are not failures.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  if (err instanceof DiffuseError) {
    process.stderr.write(`${chalk.red('error:')} ${err.message}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  process.stderr.write(`${chalk.red('error:')} ${message}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
