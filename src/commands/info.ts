import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ImageIOError } from '../errors.js';
import { readGenerationMetadata } from '../image/metadata.js';

export function defineInfo(cmd: Command): Command {
  return cmd
    .argument('<image>', 'PNG file')
    .option('--json', 'print the parameters as JSON')
    .action(async (path: string, opts: { json?: boolean }) => {
      const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
        throw new ImageIOError(`cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { cause: err });
      });
      const meta = readGenerationMetadata(bytes);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(meta, null, 2)}\n`);
        return;
      }
      switch (meta.kind) {
        case 'a1111':
          process.stdout.write(`${meta.infotext}\n`);
          return;
        case 'comfyui':
          process.stdout.write('ComfyUI workflow (the prompt and workflow graphs are in --json)\n');
          return;
        case 'unknown':
          throw new ImageIOError(`${path} has text chunks (${meta.keywords.join(', ')}) but no generation parameters diffuse understands`);
        case 'none':
          throw new ImageIOError(`${path} carries no generation parameters`);
      }
    });
}
