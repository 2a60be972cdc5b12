import { Command, CommanderError } from 'commander';
import chalk from 'chalk';
import { oneLine } from './commands/terminal-text.js';
import { DiffuseError, UsageError } from './errors.js';
import { VERSION } from './version.js';

type Define = (cmd: Command) => Command;

/**
 * Every subcommand, named and described here so `diffuse --help` lists them without loading any:
 * a command's code (and ONNX Runtime, sharp, ...) loads only when that command runs.
 */
const COMMANDS: readonly { name: string; description: string; load: () => Promise<Define> }[] = [
  { name: 'txt2img', description: 'generate images from a text prompt', load: async () => (await import('./commands/txt2img.js')).defineTxt2img },
  { name: 'img2img', description: 'repaint a picture guided by a prompt', load: async () => (await import('./commands/image-commands.js')).defineImageCommand('img2img') },
  { name: 'inpaint', description: 'repaint the masked part of a picture', load: async () => (await import('./commands/image-commands.js')).defineImageCommand('inpaint') },
  { name: 'outpaint', description: 'extend a picture beyond its borders', load: async () => (await import('./commands/image-commands.js')).defineImageCommand('outpaint') },
  { name: 'depth2img', description: 'repaint a picture keeping its depth layout (depth-conditioned models)', load: async () => (await import('./commands/image-commands.js')).defineImageCommand('depth2img') },
  { name: 'invert', description: 'DDIM inversion: the latents a picture comes from, for txt2img --latents (edit by re-sampling with another prompt)', load: async () => (await import('./commands/invert.js')).defineInvert },
  { name: 'models', description: 'list, download, verify and remove models', load: async () => (await import('./commands/models.js')).defineModels },
  { name: 'prompt', description: 'show how a prompt is parsed: edits per step, chunks, tokens, weights', load: async () => (await import('./commands/prompt.js')).definePrompt },
  { name: 'info', description: 'print the generation parameters stored in a PNG (diffuse, AUTOMATIC1111, ComfyUI)', load: async () => (await import('./commands/info.js')).defineInfo },
  { name: 'config', description: 'show the effective settings and where each comes from (default, config file)', load: async () => (await import('./commands/config.js')).defineConfig },
  { name: 'doctor', description: 'check Node, ONNX Runtime, execution providers, cache and models', load: async () => (await import('./commands/doctor.js')).defineDoctor },
  { name: 'convert', description: 'convert a single-file checkpoint (A1111/Civitai .safetensors or .ckpt, SD 1.x/2.x) or a diffusers PyTorch folder to a diffusers ONNX folder', load: async () => (await import('./commands/convert.js')).defineConvert },
  { name: 'embed-train', description: 'train a textual-inversion embedding for a new word from a folder of pictures (on ONNX Runtime, no PyTorch)', load: async () => (await import('./commands/embed-train.js')).defineEmbedTrain },
  { name: 'build', description: 'make the image assets a manifest lists, only those whose inputs changed; --check for CI, --shard for a CI matrix', load: async () => (await import('./commands/build.js')).defineBuild },
  { name: 'lock', description: "join sharded builds' lock files (lock merge)", load: async () => (await import('./commands/lock.js')).defineLock },
  { name: 'upscale', description: "enlarge a picture with an ESRGAN-family ONNX upscaler (Real-ESRGAN), tiled as A1111's extras tab", load: async () => (await import('./commands/upscale.js')).defineUpscale },
  { name: 'img2txt', description: "the prompt a picture suggests: a BLIP caption plus CLIP-ranked terms (A1111's Interrogate CLIP)", load: async () => (await import('./commands/img2txt.js')).defineImg2txt },
  { name: 'interrogate', description: 'the same as img2txt', load: async () => (await import('./commands/img2txt.js')).defineImg2txt },
  { name: 'watermark', description: "embed or detect the invisible watermark of SDXL's reference scripts and diffusers (invisible-watermark's dwtDct)", load: async () => (await import('./commands/watermark.js')).defineWatermark },
];

/**
 * ONNX Runtime reads /proc/self/cmdline when it starts and parses it recursively, a stack frame
 * per byte: past about 25 KB (with Linux's usual 8 MB stack) the process dies with SIGSEGV before
 * any of our code can answer. Longer command lines are refused up front, with the way round.
 */
export const MAX_COMMAND_LINE_BYTES = 16 * 1024;

function checkCommandLine(argv: string[]): void {
  const bytes = argv.reduce((sum, a) => sum + Buffer.byteLength(a) + 1, 0);
  if (bytes <= MAX_COMMAND_LINE_BYTES) return;
  throw new UsageError(
    `the command line is ${Math.ceil(bytes / 1024)} KB; at most ${MAX_COMMAND_LINE_BYTES / 1024} KB is taken (ONNX Runtime crashes on longer ones): put long prompts in a file (txt2img --prompts-file) and a long negative prompt in a config file ("negativePrompt")`,
  );
}

/** The subcommand a command line runs (or asks help for): its first word that is not an option. */
function invoked(argv: string[]): string | undefined {
  const words = argv.filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * The one place that turns failures into what a terminal user sees: one line, the exit code
 * the error carries (2 usage, 1 runtime), and a stack trace only with --verbose.
 */
export async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose');
  if (!process.stdout.listeners('error').includes(onPipeError)) process.stdout.on('error', onPipeError);
  const program = new Command('diffuse')
    .description('Stable Diffusion on the command line, on ONNX Runtime')
    .version(VERSION, '-V, --version')
    .option('--verbose', 'print stack traces and extra detail')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    checkCommandLine(argv);
    const wanted = invoked(argv);
    for (const c of COMMANDS) {
      const cmd = program.command(c.name).description(c.description);
      if (c.name === wanted) await (await c.load())(cmd);
    }
    // No subcommand is a usage error: the help goes to stderr and the exit code says so.
    if (wanted === undefined && !argv.some((a) => ['-h', '--help', '-V', '--version', 'help'].includes(a))) {
      process.stderr.write(program.helpInformation());
      return 2;
    }
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    return report(err, verbose);
  }
}

// `diffuse ... | head` closes the pipe early: that ends the output, not the program with a trace.
// Installed once and left: the error comes after main has returned, while the output drains.
function onPipeError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(process.exitCode === undefined ? 0 : Number(process.exitCode));
  throw err;
}

function report(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version are not failures.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  // Messages can quote files (a PNG's keywords, a config's values): one printable line, cut if long.
  if (err instanceof DiffuseError) {
    process.stderr.write(`${chalk.red('error:')} ${oneLine(err.message)}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const message = oneLine(err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err));
  process.stderr.write(`${chalk.red('error:')} ${message}${verbose ? '' : ' (run with --verbose for details)'}\n`);
  if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}
